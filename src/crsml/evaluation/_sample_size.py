"""Minimum sample size for developing a prediction model of a binary outcome (Riley et al., BMJ 2020;
Stat Med 2019), the criteria of pmsampsize.

Written here because the Python port of pmsampsize on PyPI (0.1.0) does not install on this
project's Python; the formulas are short and the tests check them on pmsampsize's worked example
(prevalence 0.174, 24 parameters, Cox-Snell R^2 0.288).

* Criterion 1: expected uniform shrinkage of at least 0.9.
* Criterion 2: optimism in the apparent Nagelkerke R^2 of at most 0.05.
* Criterion 3: the overall outcome risk estimated within +-0.05.

The anticipated Cox-Snell R^2 comes from an anticipated C statistic (Riley et al., Diagn Progn Res
2021): 200,000 simulated patients (pmsampsize simulates a million; the R^2 differs in the third
decimal) with that prevalence and a normal linear predictor separated to give that C, and the R^2
of the logistic regression of the outcome on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import statsmodels.api as sm
from scipy.stats import norm

SHRINKAGE = 0.9
OPTIMISM = 0.05
MARGIN = 0.05


def max_r2_cs(prevalence: float) -> float:
    """The largest Cox-Snell R^2 a model of an outcome with this prevalence can reach."""
    phi = prevalence
    ln_null = phi * np.log(phi) + (1 - phi) * np.log(1 - phi)
    return float(1 - np.exp(2 * ln_null))


def r2_cs_from_c(c: float, prevalence: float, n: int = 200_000, seed: int = 0) -> float:
    """Cox-Snell R^2 of a logistic model whose C statistic is ``c`` at this prevalence (simulated)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    mu = np.sqrt(2) * norm.ppf(min(max(c, 0.5 + 1e-6), 1 - 1e-6))
    lp = rng.standard_normal(n) + mu * y

    fit = sm.Logit(y.astype(float), sm.add_constant(lp)).fit(disp=0)
    return float(1 - np.exp(2 * (fit.llnull - fit.llf) / n))


@dataclass
class SampleSize:
    """What a cohort needs for a model of ``parameters`` candidate predictor parameters, against what it has."""

    prevalence: float
    parameters: int
    r2_cs: float
    c_statistic: float | None
    n_criterion_1: int
    n_criterion_2: int
    n_criterion_3: int
    required_n: int
    required_events: int
    events_per_parameter: float
    available_n: int
    available_events: int

    @property
    def enough(self) -> bool:
        return self.available_n >= self.required_n

    def sentence(self) -> str:
        """The check in words, with what it would take when the cohort falls short."""
        need = (
            f"needs {self.required_n:,} patients ({self.required_events:,} events, "
            f"{self.events_per_parameter:.1f} per candidate parameter) for {self.parameters} candidate "
            f"parameters at an outcome rate of {self.prevalence:.1%} and an anticipated Cox-Snell R2 of "
            f"{self.r2_cs:.3f}"
            + (f" (from C = {self.c_statistic:.3f})" if self.c_statistic else "")
            + " (Riley et al., BMJ 2020)"
        )
        has = f"has {self.available_n:,} ({self.available_events:,} events)"
        if self.enough:
            return f"sample size: {has}; {need}"
        short = self.required_n - self.available_n
        return (
            f"warning: sample size falls short: the cohort {has} and {need}: {short:,} more patients, or "
            f"fewer candidate predictors; expect overfitting (shrinkage below {SHRINKAGE}) and optimistic "
            "apparent figures"
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"enough": self.enough}


def _n_for_shrinkage(parameters: int, r2: float, s: float) -> int:
    return int(np.ceil(parameters / ((s - 1) * np.log(1 - r2 / s))))


def sample_size(
    prevalence: float,
    parameters: int,
    r2_cs: float | None = None,
    c_statistic: float | None = None,
    available_n: int = 0,
    available_events: int = 0,
) -> SampleSize:
    """Riley et al.'s minimum sample size for a binary outcome (give ``r2_cs`` or ``c_statistic``).

    Parameters
    ----------
    prevalence : anticipated outcome rate.
    parameters : candidate predictor parameters (every feature the learner may use).
    r2_cs : anticipated Cox-Snell R^2; else derived from ``c_statistic``.
    available_n, available_events : what the cohort has, for the comparison.
    """
    if not 0 < prevalence < 1:
        raise ValueError("prevalence must be between 0 and 1")
    if r2_cs is None:
        if c_statistic is None:
            raise ValueError("give r2_cs or c_statistic")
        r2_cs = r2_cs_from_c(c_statistic, prevalence)
    r2_cs = min(r2_cs, 0.999 * max_r2_cs(prevalence))
    n1 = _n_for_shrinkage(parameters, r2_cs, SHRINKAGE)
    s2 = r2_cs / (r2_cs + OPTIMISM * max_r2_cs(prevalence))
    n2 = _n_for_shrinkage(parameters, r2_cs, s2)
    n3 = int(np.ceil((1.96 / MARGIN) ** 2 * prevalence * (1 - prevalence)))
    n = max(n1, n2, n3)
    events = int(np.ceil(n * prevalence))
    return SampleSize(
        float(prevalence),
        int(parameters),
        float(r2_cs),
        c_statistic,
        n1,
        n2,
        n3,
        n,
        events,
        events / parameters,
        int(available_n),
        int(available_events),
    )
