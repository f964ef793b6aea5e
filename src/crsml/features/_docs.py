"""The feature dictionary page of the documentation (``docs/features.md``)."""

from __future__ import annotations

from crsml.cohort import CANONICAL_UNITS
from crsml.features._clinical import CLINICAL_FEATURES
from crsml.features._course import COURSE_FEATURES
from crsml.features._dictionary import markdown
from crsml.features._kinetics import KINETIC_STATS
from crsml.features._kinetics import __doc__ as KINETICS_DOC
from crsml.features._scores import SCORE_FEATURES


def dictionary_markdown() -> str:
    """The whole page: conventions, then one table per feature family."""
    parts = [
        "# Feature dictionary\n",
        "Generated from the code by `crsml features-dictionary --out docs/features.md`; do not edit.\n",
        "Features at landmark `L` use only rows with `time_h <= L` (treatments `< L` for the",
        "tocilizumab-benefit task). Columns are named `{analyte}_{statistic}` for kinetics.\n",
        "## Conventions\n",
        (KINETICS_DOC or "").strip() + "\n",
        "Suspected fill values found when the builder is fitted (one exact value making up >= 15% of",
        "an analyte's values across >= 10 patients) are treated as not drawn, unless",
        "`mask_fill_values=False` / `--keep-fill-values`.\n",
        "## Kinetics (for every analyte present; IL-6 shown)\n",
        markdown(f"il6_{s}" for s in KINETIC_STATS),
        "\nAnalytes and canonical units: " + ", ".join(f"`{a}` ({u})" for a, u in CANONICAL_UNITS.items()) + ".\n",
        "## Vital signs and course so far\n",
        markdown(COURSE_FEATURES),
        "\n## Clinical\n",
        markdown(CLINICAL_FEATURES),
        "\n## Published scores\n",
        markdown(SCORE_FEATURES),
        "\n## Patients columns named with `--extra`\n",
        markdown(["extra_lymphodepletion_days", "extra_site=centre_a"]),
        "\nA numeric or true/false column passes through as `extra_{column}`; a text column (a centre,",
        "a product) becomes one indicator per value seen in training, `extra_{column}={value}`. A blank",
        "or unseen value leaves all of that column's indicators missing (scoring warns and names it).",
        "Records pooled from several centres need the centre for the tocilizumab-benefit task:",
        "usual care after the landmark, and so the benefit of treating now, differs between centres.",
    ]
    return "\n".join(parts)
