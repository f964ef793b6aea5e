"""Judge a saved risk model on a labelled cohort (external, temporal or apparent validation).

:func:`evaluate` takes the labels, eligibility, landmark and horizon from the model's task and
reports, each with a bootstrap 95% interval over patients (TRIPOD+AI, Collins et al., BMJ 2024):

* discrimination (AUROC, AUPRC) and overall accuracy (Brier, scaled Brier);
* calibration (Van Calster et al., J Clin Epidemiol 2016; Austin & Steyerberg, Stat Med 2020):
  O/E, calibration-in-the-large, slope, and a flexible (loess) calibration curve with its band,
  ICI, E50 and E90;
* clinical utility: net benefit over thresholds, against treat-all/treat-none and against each
  published baseline, whose development fits travel inside the model;
* the same by subgroup (``by`` columns of the patients table, and ``age_band``), groups with
  fewer than :data:`MIN_EVENTS` events flagged as too small to judge;
* case mix against the development patients (from the aggregates the model carries; Debray et
  al., J Clin Epidemiol 2015): standardised differences, missingness, the linear predictor's
  spread, and a membership C statistic;
* the flow of patients from the cohort to the events, each exclusion with its reason.

Nothing here writes a file or a run: :func:`crsml.reporting.write_evaluation_report` and
:func:`crsml.tracking.log_evaluation` do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.nonparametric.smoothers_lowess import lowess

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.evaluation import (
    FUNCTIONS,
    METRICS,
    bootstrap_weights,
    format_interval,
    plot_by_landmark,
    predict_baseline,
    save_figure,
)
from crsml.models import Model
from crsml.tasks import excluded_counts
from crsml.validation._benefit import BenefitEvaluation, evaluate_benefit

MODEL = "model"
#: each figure of the performance table as people read it (the summary, the report)
METRIC_TITLES = {
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "brier": "Brier",
    "scaled_brier": "scaled Brier",
    "oe": "O/E",
    "cal_intercept": "calibration-in-the-large",
    "cal_slope": "calibration slope",
    "ici": "ICI",
    "e50": "E50",
    "e90": "E90",
}
#: a subgroup with fewer events is shown but flagged as too small to judge
MIN_EVENTS = 10
#: thresholds of the decision curve
THRESHOLDS = np.round(np.arange(0.02, 0.61, 0.02), 2)
#: thresholds at which net-benefit differences are tabulated
KEY_THRESHOLDS = (0.1, 0.2, 0.3)
#: paediatric below this age (years), adult from it
ADULT_AGE = 18.0
EXTRA = ("scaled_brier", "oe", "ici", "e50", "e90")


def age_band(age: pd.Series) -> pd.Series:
    """``paediatric`` (< 18 years), ``adult``, or missing."""
    a = pd.to_numeric(age, errors="coerce")
    return pd.Series(
        np.where(a.isna(), None, np.where(a < ADULT_AGE, "paediatric", "adult")), index=age.index, dtype="string"
    )


#: the loess's local fits are this share of the risks' range apart (linear in between): 0.5% for the
#: curve and ICI of the sample, 2% for the bootstrap band's and the intervals' resamples, which ran
#: each fit in half the time with the curve within 0.0004 and ICI within 0.00002 of the finer fit
#: (9,800 patients; issue #36)
LOESS_DELTA, LOESS_DELTA_BOOT = 0.005, 0.02


def flexible_calibration(y: np.ndarray, p: np.ndarray, frac: float = 0.75, delta: float = LOESS_DELTA) -> np.ndarray:
    """Loess of the outcome on the predicted risk, at each patient's risk (Austin & Steyerberg 2020)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # a local window of tied risks: NaN, filled below
        fitted = lowess(y.astype(float), p, frac=frac, it=0, delta=delta * (p.max() - p.min()), return_sorted=False)
    if np.isnan(fitted).any():
        order = np.argsort(p, kind="stable")
        ok = ~np.isnan(fitted[order])
        fitted = np.interp(p, p[order][ok], fitted[order][ok]) if ok.any() else np.full(len(p), y.mean())
    return np.clip(fitted, 0.0, 1.0)


def _ici(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    d = np.abs(flexible_calibration(y, p) - p)
    return float(d.mean()), float(np.median(d)), float(np.quantile(d, 0.9))


def _extra_metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Scaled Brier and O/E for every resample (vectorised); ICI, E50, E90 of the sample itself
    (their intervals come from the loess bootstrap of :func:`loess_bootstrap`)."""
    wsum = w.sum(axis=1)
    ybar = (w @ y) / wsum
    brier = (w @ ((p - y) ** 2)) / wsum
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample of one class: not estimable
        out = {"scaled_brier": 1 - brier / (ybar * (1 - ybar)), "oe": (w @ y) / (w @ p)}
    ici = np.full((3, w.shape[0]), np.nan)
    ici[:, 0] = _ici(y, p)
    out["ici"], out["e50"], out["e90"] = ici
    return out


def _interval(vals: np.ndarray) -> tuple[float, float, float]:
    est = float(vals[0])
    rest = vals[1:][np.isfinite(vals[1:])]
    if not np.isfinite(est) or len(rest) < 10:
        return est, np.nan, np.nan
    lo, hi = np.percentile(rest, [2.5, 97.5])
    return est, float(lo), float(hi)


def performance(
    y: np.ndarray,
    preds: dict[str, np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    weights: np.ndarray | None = None,
    ici_replicates: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per model: AUROC, AUPRC, Brier, calibration intercept and slope, scaled Brier, O/E,
    ICI, E50 and E90, each with its percentile bootstrap 95% interval (the same patient resamples
    for every model; ``weights``: resampling counts of :func:`~crsml.evaluation.bootstrap_weights`
    to share them with other figures). ``ici_replicates[name]`` (3, resamples + 1) gives the
    intervals of ICI, E50 and E90 (:func:`loess_bootstrap`); without them those have none."""
    y = np.asarray(y, dtype=float)
    w = bootstrap_weights(len(y), n_boot, seed) if weights is None else weights
    w32 = w.astype(np.float32)  # counts are exact in float32; the rank metrics run twice as fast on it
    rows = {}
    for name, p in preds.items():
        p = np.asarray(p, dtype=float)
        row: dict[str, float] = {}
        reps = {m: FUNCTIONS[m](y, p, w32 if m in ("auroc", "auprc") else w) for m in METRICS}
        reps |= _extra_metrics(y, p, w)
        if ici_replicates and name in ici_replicates:
            reps["ici"], reps["e50"], reps["e90"] = ici_replicates[name]
        for m, vals in reps.items():
            row[m], row[f"{m}_low"], row[f"{m}_high"] = _interval(np.asarray(vals, dtype=float))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def loess_bootstrap(
    y: np.ndarray, p: np.ndarray, n_boot: int = 200, seed: int = 0, points: int = 40
) -> tuple[pd.DataFrame, np.ndarray]:
    """The loess calibration curve on a grid of predicted risks with its bootstrap 95% band, and
    ICI, E50 and E90 of the sample and of each resample (3, n_boot + 1), from the same loess fits."""
    lo_p, hi_p = np.quantile(p, [0.01, 0.99])
    grid = np.linspace(lo_p, hi_p, points)

    def fit(yy: np.ndarray, pp: np.ndarray, delta: float = LOESS_DELTA_BOOT) -> tuple[np.ndarray, np.ndarray]:
        fitted = flexible_calibration(yy, pp, delta=delta)
        d = np.abs(fitted - pp)
        order = np.argsort(pp, kind="stable")
        return np.interp(grid, pp[order], fitted[order]), np.array([d.mean(), np.median(d), np.quantile(d, 0.9)])

    est, ici0 = fit(y, p, LOESS_DELTA)
    rng = np.random.default_rng(seed + 2)
    curves, icis = [], [ici0]
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            c, i = fit(y[idx], p[idx])
            curves.append(c)
            icis.append(i)
    band = np.percentile(np.array(curves), [2.5, 97.5], axis=0) if curves else np.full((2, points), np.nan)
    curve = pd.DataFrame({"predicted": grid, "observed": est, "low": band[0], "high": band[1]})
    return curve, np.array(icis).T


def calibration_curve(y: np.ndarray, p: np.ndarray, n_boot: int = 200, seed: int = 0, points: int = 40) -> pd.DataFrame:
    """The loess calibration curve on a grid of predicted risks with a bootstrap 95% band."""
    return loess_bootstrap(y, p, n_boot, seed, points)[0]


def net_benefit_curves(
    y: np.ndarray,
    preds: dict[str, np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    thresholds: np.ndarray = THRESHOLDS,
    weights: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Net benefit of each model, treat-all and treat-none over ``thresholds`` with bootstrap 95%
    intervals, and the model's difference from each other strategy at :data:`KEY_THRESHOLDS`
    (paired: the same resamples)."""
    y = np.asarray(y, dtype=float)
    w = bootstrap_weights(len(y), n_boot, seed) if weights is None else weights
    n = w.sum(axis=1)[:, None]
    odds = thresholds / (1 - thresholds)
    nb = {}
    for name, p in preds.items():
        treat = (np.asarray(p)[:, None] >= thresholds[None, :]).astype(float)
        tp = w @ (treat * y[:, None])
        fp = w @ (treat * (1 - y)[:, None])
        nb[name] = (tp - fp * odds) / n
    ybar = (w @ y)[:, None] / n
    nb["treat all"] = ybar - (1 - ybar) * odds
    nb["treat none"] = np.zeros_like(nb["treat all"])
    rows = []
    for name, v in nb.items():
        lo, hi = np.nanpercentile(v[1:], [2.5, 97.5], axis=0)
        rows += [
            {"strategy": name, "threshold": t, "net_benefit": v[0, i], "low": lo[i], "high": hi[i]}
            for i, t in enumerate(thresholds)
        ]
    curves = pd.DataFrame(rows)
    diffs = []
    for other in [k for k in nb if k != MODEL]:
        d = nb[MODEL] - nb[other]
        for t in KEY_THRESHOLDS:
            i = int(np.argmin(np.abs(thresholds - t)))
            lo, hi = np.nanpercentile(d[1:, i], [2.5, 97.5])
            diffs.append(
                {
                    "versus": other,
                    "threshold": float(thresholds[i]),
                    "difference": float(d[0, i]),
                    "low": float(lo),
                    "high": float(hi),
                }
            )
    return curves, pd.DataFrame(diffs)


def case_mix(model: Model, X: pd.DataFrame, risk: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The important predictors in development (aggregates the model carries) against the new
    cohort: means, SDs, missingness and standardised differences; the linear predictor's mean and
    SD in both; and a membership C statistic, the AUROC of a linear discriminant telling the two
    apart under normality (Phi of the Mahalanobis distance over root 2), computed from the
    development aggregates without any development row."""
    dev = model.metadata.get("development") or {}
    if not dev.get("features"):
        return pd.DataFrame(), {"available": False}
    names = list(dev["features"])
    new = X.reindex(columns=names).astype(float)
    rows = []
    for f, d in dev["features"].items():
        m, sd = float(new[f].mean()), float(new[f].std(ddof=1))
        pooled = np.sqrt((d["sd"] ** 2 + sd**2) / 2)
        rows.append(
            {
                "feature": f,
                "development_mean": d["mean"],
                "development_sd": d["sd"],
                "new_mean": m,
                "new_sd": sd,
                "standardised_difference": (m - d["mean"]) / pooled if pooled > 0 else np.nan,
                "development_missing": d["missing"],
                "new_missing": float(new[f].isna().mean()),
            }
        )
    table = pd.DataFrame(rows)
    lp = np.log(np.clip(risk, 1e-7, 1 - 1e-7) / (1 - np.clip(risk, 1e-7, 1 - 1e-7)))
    filled = new.fillna(new.median()).fillna(pd.Series({f: d["mean"] for f, d in dev["features"].items()}))
    cov = (np.asarray(dev["covariance"]) + np.cov(filled.to_numpy(), rowvar=False)) / 2
    delta = filled.mean().to_numpy() - np.array([d["mean"] for d in dev["features"].values()])
    maha = float(np.sqrt(max(delta @ np.linalg.pinv(cov) @ delta, 0.0)))
    membership = float(norm.cdf(maha / np.sqrt(2)))
    summary = {
        "available": True,
        "development_n": dev["n"],
        "development_event_rate": dev["event_rate"],
        "development_lp_mean": dev["lp_mean"],
        "development_lp_sd": dev["lp_sd"],
        "new_lp_mean": float(lp.mean()),
        "new_lp_sd": float(lp.std(ddof=1)),
        "membership_c": membership,
        "max_abs_standardised_difference": float(table["standardised_difference"].abs().max()),
    }
    similar = membership < 0.6 and abs(summary["new_lp_sd"] - dev["lp_sd"]) < 0.25 * dev["lp_sd"]
    summary["kind"] = (
        "reproducibility: the new patients resemble the development patients"
        if similar
        else "transportability: the new patients differ from the development patients in case mix"
    )
    return table, summary


@dataclass
class EvaluationResult:
    """A model judged on a labelled cohort. Aggregates only: ``y`` and ``risk`` stay in memory."""

    task: str
    landmark_h: float
    horizon_h: float
    model_info: dict[str, Any]
    flow: pd.DataFrame
    table: pd.DataFrame
    calibration: pd.DataFrame
    decision: pd.DataFrame
    decision_differences: pd.DataFrame
    subgroups: pd.DataFrame
    case_mix: pd.DataFrame
    case_mix_summary: dict[str, Any]
    n_boot: int
    seed: int
    notes: list[str] = field(default_factory=list)
    y: np.ndarray | None = field(default=None, repr=False)
    risk: np.ndarray | None = field(default=None, repr=False)
    #: a landmark supermodel's figures at each landmark of its grid (``None`` for a model of one landmark)
    by_landmark: pd.DataFrame | None = None
    #: and its net benefit at each landmark and key threshold, beside treating all
    decision_by_landmark: pd.DataFrame | None = None

    @property
    def model_row(self) -> pd.Series:
        return self.table.loc[MODEL]

    def summary(self) -> pd.DataFrame:
        """The main figures with intervals, as text."""
        r = self.model_row
        names = METRIC_TITLES
        return pd.DataFrame(
            {"value": [_fmt(r[m], r[f"{m}_low"], r[f"{m}_high"]) for m in names]}, index=list(names.values())
        )

    def to_dict(self) -> dict[str, Any]:
        """Every figure of the report as JSON-able data (no patient rows, no identifiers)."""

        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return json_safe(df.reset_index().to_dict(orient="records")) if len(df) else []

        return {
            "task": self.task,
            "landmark_h": self.landmark_h,
            "horizon_h": self.horizon_h,
            "model": json_safe(self.model_info),
            "n_boot": self.n_boot,
            "seed": self.seed,
            "flow": records(self.flow),
            "performance": records(self.table),
            "calibration_curve": records(self.calibration),
            "decision_curve": records(self.decision),
            "net_benefit_differences": records(self.decision_differences),
            "subgroups": records(self.subgroups),
            "case_mix": records(self.case_mix),
            "case_mix_summary": json_safe(self.case_mix_summary),
            "notes": self.notes,
            **({"by_landmark": records(self.by_landmark)} if self.by_landmark is not None else {}),
            **(
                {"net_benefit_by_landmark": json_safe(self.decision_by_landmark.to_dict(orient="records"))}
                if self.decision_by_landmark is not None
                else {}
            ),
        }

    # -- plots ------------------------------------------------------------------------
    def plot_calibration(self, ax: Any = None) -> Any:
        """Loess calibration curve with its 95% band, and the ideal line."""
        from matplotlib.figure import Figure

        ax = ax or Figure(figsize=(5, 5)).subplots()
        c = self.calibration
        ax.fill_between(c["predicted"], c["low"], c["high"], alpha=0.25, label="95% band")
        ax.plot(c["predicted"], c["observed"], lw=2, label="model (loess)")
        top = float(np.nanmax([c["predicted"].max(), c["high"].max()]))
        ax.plot([0, top], [0, top], "k--", lw=1, label="ideal")
        r = self.model_row
        ax.set(
            xlabel="predicted risk",
            ylabel="observed risk",
            title=f"ICI {r['ici']:.3f}; slope {r['cal_slope']:.2f}; CITL {r['cal_intercept']:.2f}",
        )
        ax.legend(loc="upper left")
        return ax

    def plot_decision_curve(self, ax: Any = None) -> Any:
        """Net benefit against threshold for the model, the baselines, treat-all and treat-none."""
        from matplotlib.figure import Figure

        ax = ax or Figure(figsize=(6, 5)).subplots()
        for name, g in self.decision.groupby("strategy", sort=False):
            lw = 2.5 if name == MODEL else 1.2
            ax.plot(g["threshold"], g["net_benefit"], lw=lw, label=str(name), ls="--" if name == "treat all" else "-")
            if name == MODEL:
                ax.fill_between(g["threshold"], g["low"], g["high"], alpha=0.2)
        ybar = float(np.nanmax(self.decision["net_benefit"]))
        ax.set(xlabel="risk threshold", ylabel="net benefit", ylim=(-0.05, max(ybar * 1.1, 0.05)))
        ax.legend(fontsize=7)
        return ax

    def plot_forest(self, metric: str = "auroc", ax: Any = None) -> Any:
        """A forest plot of ``metric`` (or ``oe``, ``cal_intercept``...) by subgroup, with intervals."""
        from matplotlib.figure import Figure

        s = self.subgroups
        ax = ax or Figure(figsize=(6, 0.4 * max(len(s), 3) + 1)).subplots()
        if s.empty:
            ax.text(0.5, 0.5, "no subgroups", ha="center")
            return ax
        labels = [
            f"{c} = {v}" + (" (too small)" if small else "")
            for c, v, small in zip(s["column"], s["value"], s["too_small"], strict=True)
        ]
        ypos = np.arange(len(s))[::-1]
        est, lo, hi = s[metric].to_numpy(float), s[f"{metric}_low"].to_numpy(float), s[f"{metric}_high"].to_numpy(float)
        ax.errorbar(est, ypos, xerr=[est - lo, hi - est], fmt="o", color="k", capsize=3)
        ax.axvline(float(self.model_row[metric]), color="C0", ls="--", label="all patients")
        ax.set_yticks(ypos, labels)
        ax.set(xlabel=metric)
        ax.legend(fontsize=7)
        return ax

    def plot_case_mix(self, ax: Any = None) -> Any:
        """Standardised differences of the important predictors (|d| > 0.1 is a notable shift)."""
        from matplotlib.figure import Figure

        cm = self.case_mix
        ax = ax or Figure(figsize=(6, 0.35 * max(len(cm), 3) + 1)).subplots()
        if cm.empty:
            ax.text(0.5, 0.5, "the model carries no development aggregates", ha="center")
            return ax
        ypos = np.arange(len(cm))[::-1]
        ax.barh(
            ypos, cm["standardised_difference"], color=np.where(cm["standardised_difference"].abs() > 0.1, "C3", "C0")
        )
        ax.axvline(0.1, color="grey", ls=":")
        ax.axvline(-0.1, color="grey", ls=":")
        ax.set_yticks(ypos, cm["feature"])
        ax.set(xlabel="standardised difference (new - development)")
        return ax

    def plot_by_landmark(self, metric: str = "auroc") -> Any:
        """A landmark supermodel's ``metric`` at each landmark with 95% intervals, beside the
        best baselines (the dynamic AUROC over time)."""
        if self.by_landmark is None or self.by_landmark.empty:
            raise ValueError("figures by landmark are for a landmark supermodel judged at its grid's landmarks")
        return plot_by_landmark(self.by_landmark, metric)

    def plots(self, out_dir: str | Path) -> dict[str, Path]:
        """Every figure as a PNG in ``out_dir`` (seeded, so the same result gives the same files)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        if self.by_landmark is not None and not self.by_landmark.empty:
            paths["by_landmark"] = save_figure(self.plot_by_landmark(), out / "by_landmark.png")
        for name, draw in (
            ("calibration", self.plot_calibration),
            ("decision_curve", self.plot_decision_curve),
            ("forest_auroc", lambda: self.plot_forest("auroc")),
            ("forest_oe", lambda: self.plot_forest("oe")),
            ("case_mix", self.plot_case_mix),
        ):
            paths[name] = save_figure(draw(), out / f"{name}.png")
        return paths


def _fmt(v: float, lo: float, hi: float) -> str:
    if not np.isfinite(v):
        return "not estimable"
    return format_interval(v, lo, hi) if np.isfinite(lo) else f"{v:.3f} (interval not estimable)"


def json_safe(o: Any) -> Any:
    """Plain JSON types (NaN as None)."""
    if isinstance(o, dict):
        return {str(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_safe(v) for v in o]
    if isinstance(o, (np.bool_, bool)):
        return bool(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return None if not np.isfinite(o) else float(o)
    return o


def labelled_rows(model: Model, cohort: Cohort) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, pd.Index]:
    """The model's feature rows and labels of the patients of ``cohort`` it can be judged on, the
    flow from the cohort to them (counts and reasons), and their ids (kept in memory only). A
    landmark supermodel is judged at its own landmark (``model.at(L)`` for another)."""
    model = model.at(model.landmark_h)  # a supermodel's features at that landmark alone
    task, L = model.task, model.landmark_h
    patients = cohort.patients
    X_all, base = model.features.build(cohort)
    elig = task.eligibility(cohort, L, base=base).set_index("patient_id")
    labels = task.labels(cohort, L).reset_index(level="landmark_h", drop=True)
    ids = pd.Index(patients["patient_id"].astype(str))
    eligible = elig["eligible"].reindex(ids).fillna(False).to_numpy(dtype=bool)
    label = labels["label"].reindex(ids).to_numpy(dtype=float)
    labelled = eligible & ~np.isnan(label)
    flow = pd.DataFrame(
        [
            {"step": "patients in the cohort", "n": len(ids) + len(cohort.invalid), "excluded": {}},
            {
                "step": "scorable (valid rows)",
                "n": len(ids),
                "excluded": excluded_counts(pd.Series(list(cohort.invalid.values()), dtype=str)),
            },
            {
                "step": "eligible at the landmark",
                "n": int(eligible.sum()),
                "excluded": excluded_counts(elig["reason"].reindex(ids).fillna("").astype(str)[~eligible]),
            },
            {
                "step": "labelled",
                "n": int(labelled.sum()),
                "excluded": excluded_counts(labels["reason"].reindex(ids).fillna("").astype(str)[eligible & ~labelled]),
            },
            {"step": "with the outcome", "n": int(np.nansum(label[labelled])), "excluded": {}},
        ]
    ).set_index("step")
    keep_ids = ids[labelled]
    X = X_all.reset_index(level="landmark_h", drop=True).reindex(keep_ids)[model.feature_names]
    y = label[labelled].astype(int)
    if len(y) < 20 or min(y.sum(), len(y) - y.sum()) < 5:
        raise CrsmlError(
            f"too few labelled patients to judge the model: {len(y)} labelled, {int(y.sum())} with "
            "the outcome (need 20 and 5 of each class)"
        )
    return X, y, flow, keep_ids


#: how models of another kind than risk are judged (a benefit model: without the truth)
OTHER_KINDS = {"benefit": evaluate_benefit}


def evaluate(
    model: Model,
    cohort: Cohort,
    by: tuple[str, ...] | list[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    curve_boot: int = 200,
) -> EvaluationResult | BenefitEvaluation:
    """Judge ``model`` on the labelled patients of ``cohort`` it can score.

    Parameters
    ----------
    model : a risk model (:func:`crsml.load_model`); a benefit model is judged without the truth by
        :func:`evaluate_benefit` (a :class:`BenefitEvaluation`).
    cohort : labelled patients (CRS grades after the landmark); read with ``on_error="drop"`` to keep
        the valid patients of a cohort with damaged rows (they appear in the flow).
    by : patients-table columns to break the figures down by (``age_band`` is derived from ``age_years``).
    n_boot : bootstrap resamples for the intervals; ``curve_boot`` those of the loess curve and ICI.
    seed : seeds every resample.
    """
    task, L = model.task, model.landmark_h
    if task.model_kind in OTHER_KINDS:
        if by:
            raise CrsmlError(f"--by: subgroups are not available for a {task.model_kind} model")
        return OTHER_KINDS[task.model_kind](model, cohort, n_boot=n_boot, seed=seed)
    patients = cohort.patients
    for col in by:
        if col != "age_band" and col not in patients.columns:
            raise CrsmlError(
                f"--by {col}: not a column of the patients table (columns: "
                f"{', '.join(map(str, patients.columns))}; or age_band)"
            )
    grid = model.landmarks
    X, y, flow, keep_ids = labelled_rows(model.at(L), cohort)
    notes: list[str] = []
    if cohort.crs.empty and not cohort.vitals.empty:
        notes.append(
            "the cohort records no CRS grade: the outcome is judged on grades crsml derived from the vital "
            "signs (ASTCT grading), a lower bound where an oxygen device or vasopressor was not recorded"
        )
    preds = _predictions(model, X, notes)
    risk = preds[MODEL]
    w = bootstrap_weights(len(y), n_boot, seed)  # one set of patient resamples for every figure
    calib, ici_reps = loess_bootstrap(y, risk, n_boot=curve_boot, seed=seed)
    table = performance(y, preds, weights=w, ici_replicates={MODEL: ici_reps})
    decision, differences = net_benefit_curves(y, preds, weights=w)

    groups = patients.set_index(patients["patient_id"].astype(str)).reindex(keep_ids)
    sub_rows = []
    for col in by:
        values = age_band(groups["age_years"]) if col == "age_band" else groups[col].astype("string")
        for value in sorted(values.dropna().unique()):
            sel = (values == value).fillna(False).to_numpy(dtype=bool)
            ys, rs = y[sel], risk[sel]
            row: dict[str, Any] = {
                "column": col,
                "value": str(value),
                "n": int(sel.sum()),
                "events": int(ys.sum()),
                "too_small": bool(ys.sum() < MIN_EVENTS or (len(ys) - ys.sum()) < MIN_EVENTS),
            }
            if 0 < ys.sum() < len(ys):  # the same resamples, restricted to the group
                t = performance(ys, {MODEL: rs}, weights=w[:, sel]).loc[MODEL]
                row |= {k: t[k] for k in t.index if not k.startswith(("ici", "e50", "e90"))}
            sub_rows.append(row)
    subgroups = pd.DataFrame(sub_rows)
    if len(subgroups):
        for m in (*METRICS, "scaled_brier", "oe"):
            for suffix in ("", "_low", "_high"):
                if f"{m}{suffix}" not in subgroups:
                    subgroups[f"{m}{suffix}"] = np.nan
    by_landmark, decision_by_landmark = (
        landmark_performance(model, cohort, n_boot, seed, notes) if grid else (None, None)
    )
    mix, mix_summary = case_mix(model, X, risk)
    if not mix_summary.get("available"):
        notes.append(
            "this model carries no development aggregates (trained before crsml stored them): no case-mix comparison"
        )
    info = {
        "task": task.name,
        "task_params": task.get_params(),
        "landmark_h": L,
        "registered_name": model.source.get("registered_name"),
        "version": model.source.get("version"),
        "model_digest": model.source.get("digest"),
        "data_digest": model.metadata.get("data_digest"),
        "lineage": model.metadata.get("lineage", []),
    }
    return EvaluationResult(
        task.name,
        L,
        float(task.horizon_h),
        info,
        flow,
        table,
        calib,
        decision,
        differences,
        subgroups,
        mix,
        mix_summary,
        n_boot,
        seed,
        notes,
        y=y,
        risk=risk,
        by_landmark=by_landmark,
        decision_by_landmark=decision_by_landmark,
    )


def _predictions(model: Model, X: pd.DataFrame, notes: list[str]) -> dict[str, np.ndarray]:
    """The model's risk of ``X``'s rows and each stored baseline's (a baseline that cannot be
    computed on these patients, or a model without baselines, is noted)."""
    preds = {MODEL: model.predict_features(X)["risk"].to_numpy(dtype=float)}
    fits = model.metadata.get("baseline_fits")
    if not fits:
        notes.append(
            "this model carries no baseline fits (trained before crsml stored them): no comparison with the "
            "published baselines"
        )
        return preds
    for name, fit in fits.items():
        b = predict_baseline(fit, X)
        if np.isfinite(b).all():
            preds[name] = b
        elif f"baseline {name}: not available on these patients" not in notes:
            notes.append(f"baseline {name}: not available on these patients")
    return preds


def landmark_performance(
    model: Model, cohort: Cohort, n_boot: int = 1000, seed: int = 0, notes: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A landmark supermodel judged at each landmark of its grid, each patient once (the dynamic
    AUROC over time; van Houwelingen & Putter 2011): :func:`performance` of the model and its
    baselines, indexed by ``(landmark_h, model)``, with ``n`` and ``events``; and the model's net
    benefit at each landmark and key threshold beside treating all (``landmark_h``,
    ``threshold``, ``net_benefit`` and ``treat_all`` with intervals, ``difference`` from treating
    all with its paired interval). A landmark with too few labelled patients is left out and noted."""
    notes = [] if notes is None else notes
    frames, decisions = {}, []
    for L in model.landmarks:
        try:
            X, y, _, _ = labelled_rows(model.at(L), cohort)
        except CrsmlError as exc:
            notes.append(f"at {L:g} h: {exc}")
            continue
        preds = _predictions(model, X, notes)
        w = bootstrap_weights(len(y), n_boot, seed)
        t = performance(y, preds, weights=w)
        frames[float(L)] = t.assign(n=len(y), events=int(y.sum()))
        curves, diffs = net_benefit_curves(y, {MODEL: preds[MODEL]}, weights=w)
        for _, d in diffs[diffs["versus"] == "treat all"].iterrows():
            at = curves[np.isclose(curves["threshold"], d["threshold"])].set_index("strategy")
            decisions.append(
                {
                    "landmark_h": float(L),
                    "threshold": d["threshold"],
                    "net_benefit": at.loc[MODEL, "net_benefit"],
                    "net_benefit_low": at.loc[MODEL, "low"],
                    "net_benefit_high": at.loc[MODEL, "high"],
                    "treat_all": at.loc["treat all", "net_benefit"],
                    "difference": d["difference"],
                    "difference_low": d["low"],
                    "difference_high": d["high"],
                }
            )
    if not frames:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(frames, names=["landmark_h", "model"]), pd.DataFrame(decisions)
