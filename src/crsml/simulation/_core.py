"""``simulate(n, seed, profile)``: a cohort in the canonical format plus its ``truth``.

The factual course runs all patients together on a 2-hour grid for 15 days; vital signs and
the ASTCT grade are observed every 6 hours, when the simulated clinician decides. At each
landmark the state is kept and run on three ways with the same future random numbers:
usual care without tocilizumab in ``[L, L + grace)`` (``y0``), tocilizumab at ``L`` (``y1``),
and ``truth_draws`` fresh futures under usual care for ``p_severe`` (Monte Carlo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crsml._version import __version__
from crsml.cohort import CANONICAL_UNITS, CYTOKINES, Cohort
from crsml.simulation import _dynamics as dyn
from crsml.simulation._profiles import Profile, get_profile

DRAW_DAYS = np.array([-1, 0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 13])
LLOQ = {
    "il6": 1.5,
    "ifng": 1.0,
    "il10": 1.0,
    "il2": 1.0,
    "il4": 1.0,
    "tnfa": 1.0,
    "il17a": 1.0,
    "mcp1": 10.0,
    "il1ra": 30.0,
}
ULOQ = {"il6": 5000.0}
CYTOKINE_PANEL = CYTOKINES  # every canonical cytokine is measured
LAB_PANEL = ("crp", "ferritin", "ldh", "platelets", "creatinine", "cart_copies")
ASSAY_CV = 0.15
#: latent traits kept in ``truth``: column -> ``Traits`` field (never features: with the state
#: below they bound what any model of the records could know, as in experiments/simulated_ceiling.py)
LATENT_TRAITS = {
    "il6_share": "d6",
    "il1_share": "d1",
    "ifng_share": "dI",
    "myeloid_gain": "gain",
    "cart_growth": "growth",
    "frailty": "frailty",
}
#: the latent state at each landmark kept in ``truth`` as ``state_<name>``
LATENT_STATE = ("cart", "antigen", "myeloid", "organ", "noise", "support", "grade_hours_ge1", "crp", "ferritin")
#: every latent column of ``truth``
LATENT_COLUMNS = (*LATENT_TRAITS, *(f"state_{k}" for k in LATENT_STATE))


def draw_traits(n: int, rng: np.random.Generator, p: Profile) -> tuple[dyn.Traits, pd.DataFrame]:
    """Patient characteristics (observed in ``patients``) and latent traits."""
    shares = np.array([s.share for s in p.sites])
    site = rng.choice(len(p.sites), size=n, p=shares / shares.sum())
    ped = rng.random(n) < p.p_pediatric
    age = np.where(ped, rng.uniform(3, 18, n), np.clip(rng.normal(40, 14, n), 18, 78)).round()
    male = rng.random(n) < p.p_male
    weight = np.where(age < 18, 10 + 3.0 * age, rng.normal(np.where(male, 78, 65), 12, n))
    weight = np.clip(weight * np.exp(rng.normal(0, 0.12, n)), 10, 160).round(1)
    high = rng.random(n) < p.p_high_burden
    blast = np.where(high, np.clip(np.exp(rng.normal(np.log(35), 0.8, n)), 5, 97), rng.uniform(0, 5, n)).round(1)
    cd28 = rng.random(n) < np.array([s.p_cd28 for s in p.sites])[site]
    dose = np.exp(rng.normal(np.log(1e6), 0.7, n)).round(-3)
    prior_lines = 1 + rng.poisson(2.0, n)
    prior_tx = rng.random(n) < p.p_prior_transplant
    if p.il6_share_by_costim is None:
        mix = rng.dirichlet([2.5, 1.0, 1.2], n)  # IL-6, IL-1, IFN-gamma shares
    else:  # a Dirichlet per patient, as normalised gammas, with the IL-6 weight of the product
        il6 = np.where(cd28, p.il6_share_by_costim[1], p.il6_share_by_costim[0])
        shape = np.column_stack([il6, np.full(n, 1.0), np.full(n, 1.2)])
        g = rng.gamma(shape)
        mix = g / g.sum(axis=1, keepdims=True)
    tr = dyn.Traits(
        age=age,
        blast_pct=blast,
        dose_per_kg=dose,
        cd28=cd28,
        site=site,
        growth=np.where(cd28, p.growth_cd28, p.growth_41bb) * np.exp(rng.normal(0, 0.12, n)),
        gain=np.exp(rng.normal(0, 0.6, n)),
        d6=mix[:, 0],
        d1=mix[:, 1],
        dI=mix[:, 2],
        frailty=np.exp(rng.normal(0, 0.15, n)) * (1 + 0.006 * np.maximum(age - 40, 0)),
        il6_base=np.exp(rng.normal(np.log(4), 0.5, n)),
        ifng_base=np.exp(rng.normal(np.log(3), 0.5, n)),
        ferritin_base=np.exp(rng.normal(np.log(600), 0.7, n)),
        crp_base=np.exp(rng.normal(np.log(4), 0.8, n)),
        ldh_base=np.exp(rng.normal(np.log(220), 0.3, n)) * (1 + blast / 60),
        platelets_base=np.exp(rng.normal(np.log(120), 0.5, n)) * (1 - blast / 130),
        creatinine_base=np.where(age < 18, 35, 65) * np.exp(rng.normal(0, 0.2, n)),
        mcp1_base=np.exp(rng.normal(np.log(350), 0.4, n)),
    )
    patients = pd.DataFrame(
        {
            "patient_id": [f"SIM{i:06d}" for i in range(n)],
            "age_years": age,
            "sex": np.where(male, "male", "female"),
            "weight_kg": weight,
            "diagnosis": p.diagnosis,
            "marrow_blast_pct": blast,
            "costim": np.where(cd28, "cd28", "4-1bb"),
            "cart_dose_per_kg": dose,
            "prior_lines": prior_lines,
            "prior_transplant": prior_tx,
            "site": np.array([s.name for s in p.sites])[site],
        }
    )
    return tr, patients


@dataclass
class Snapshot:
    """The state at a landmark, after its observation and before its decision."""

    step: int
    state: dyn.State
    grade: np.ndarray
    il6_fold: np.ndarray


def _continue(
    snap: Snapshot,
    tr: dyn.Traits,
    p: Profile,
    seed: int,
    run: int,
    n_steps: int,
    forbid_until_h: float | None = None,
    force: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run from a snapshot to the end; returns (any grade >= 3 after L, grade >= 3 hours after L,
    total grade >= 1 hours)."""
    st = snap.state.copy()
    n = len(st.cart)
    obs_every = int(round(p.obs_every_h / p.dt_h))
    any3 = np.zeros(n, dtype=bool)
    hours3 = np.zeros(n)
    grade, fold = snap.grade, snap.il6_fold
    for k in range(snap.step, n_steps):
        t = k * p.dt_h
        if k % obs_every == 0:
            if k != snap.step:
                signs = dyn.observe(st, tr, p, t, seed, k, run)
                dyn.after_observation(st, p, signs, seed, k, run)
                grade = signs.grade
                any3 |= grade >= 3
                hours3 += np.where(grade >= 3, p.obs_every_h, 0.0)
                fold = dyn.cytokines(st, tr, p)["il6"] / tr.il6_base
            forbid = None
            if forbid_until_h is not None and t < forbid_until_h:
                forbid = np.ones(n, dtype=bool)
            force_now = np.ones(n, dtype=bool) if (force and k == snap.step) else None
            dyn.decide(st, tr, p, grade, fold, t, seed, k, run, forbid, force_now)
        dyn.advance(st, tr, p, seed, k, run)
    return any3, hours3, st.grade_hours_ge1


def simulate(
    n: int,
    seed: int,
    profile: str | Profile = "b_all",
    landmarks: tuple[float, ...] = (24.0, 48.0, 72.0),
    grace_h: float = 6.0,
    truth_draws: int = 8,
    prolonged_days: float = 7.0,
    expected_benefit: bool = False,
    truth_stream: int = 0,
) -> Cohort:
    """Simulate ``n`` patients; the same seed gives the same cohort, byte for byte.

    ``truth_draws`` Monte Carlo futures per patient and landmark estimate ``p_severe`` and
    ``p_prolonged`` (NaN for patients already severe or dead at the landmark, for whom the
    question is closed); raise it where the truth must be precise (for example 64 for a
    ceiling AUROC). ``expected_benefit`` also runs those futures in pairs, with and without
    tocilizumab at the landmark, for ``benefit_days``: the expected severe-CRS days spared given
    the patient's whole state at L (``severe_days_y0 - severe_days_y1`` is one future's).
    ``truth_stream`` picks the Monte Carlo futures: the same patients and records with another
    stream give an independent estimate of the truth (to measure its Monte Carlo error).
    ``truth`` also keeps the latent traits and the state at each landmark (``state_<name>`` for
    ``LATENT_STATE``), to bound what a model of the records could learn; never features.
    """
    if truth_stream < 0:
        raise ValueError("truth_stream must not be negative")
    if n < 1:
        raise ValueError("n must be at least 1")
    p = get_profile(profile) if isinstance(profile, str) else profile
    rng = np.random.default_rng([seed, 0])
    tr, patients = draw_traits(n, rng, p)
    st = dyn.initial_state(tr)
    n_steps = int(p.days * 24 / p.dt_h)
    obs_every = int(round(p.obs_every_h / p.dt_h))
    lm_steps = {int(round(L / p.dt_h)): L for L in landmarks}

    # measurement schedule: the day-d sample is drawn in the 4 h before 24 * d (the morning round),
    # so it is in hand at the landmark L = 24 * d, as in a daily table stamped time_h = 24 * day
    # (DESIGN.md: "L = 48 uses days 0-2"); then the model step each draw reads, missing draws
    jitter = rng.uniform(-4, 0, (n, len(DRAW_DAYS)))
    draw_t = np.round(24.0 * DRAW_DAYS[None, :] + jitter, 2)
    draw_step = np.clip(np.round(draw_t / p.dt_h).astype(int), 0, n_steps - 1)
    latent = {a: np.full(draw_t.shape, np.nan) for a in (*CYTOKINE_PANEL, *LAB_PANEL)}

    vit: dict[str, list[np.ndarray]] = {
        k: [] for k in ("t", "temp_c", "hypotension", "vasopressors", "vasopressin", "o2_level", "grade", "alive")
    }
    events: list[tuple[np.ndarray, float, str]] = []
    snaps: dict[float, Snapshot] = {}
    for k in range(n_steps):
        t = k * p.dt_h
        hit = draw_step == k
        if hit.any():
            levels = dyn.cytokines(st, tr, p)
            rows = np.nonzero(hit)
            for a in latent:
                latent[a][rows] = levels[a][rows[0]]
        if k % obs_every == 0 and k > 0:
            was_dead = st.dead.copy()
            signs = dyn.observe(st, tr, p, t, seed, k, 0)
            dyn.after_observation(st, p, signs, seed, k, 0)
            for key in ("temp_c", "hypotension", "vasopressors", "vasopressin", "o2_level", "grade"):
                vit[key].append(getattr(signs, key))
            vit["t"].append(np.full(n, t))
            vit["alive"].append(~was_dead)
            fold = dyn.cytokines(st, tr, p)["il6"] / tr.il6_base
            if k in lm_steps:
                snaps[lm_steps[k]] = Snapshot(k, st.copy(), signs.grade.copy(), fold.copy())
            toci, ster = dyn.decide(st, tr, p, signs.grade, fold, t, seed, k, 0)
            events.append((np.flatnonzero(toci), t, "tocilizumab"))
            events.append((np.flatnonzero(ster), t, "dexamethasone"))
        dyn.advance(st, tr, p, seed, k, 0)

    ids = patients["patient_id"].to_numpy()
    vitals, crs = _vitals_tables(vit, ids)
    treatments = _treatment_table(events, ids, patients["weight_kg"].to_numpy())
    measurements = _measurement_table(latent, draw_t, ids, rng)
    grades = np.stack(vit["grade"], axis=1)
    times = np.asarray([t[0] for t in vit["t"]])
    factual = {}
    for L in snaps:
        after = times > L
        factual[L] = (
            (grades[:, after] >= 3).any(axis=1),
            (grades[:, after] >= 3).sum(axis=1) * p.obs_every_h,
            st.grade_hours_ge1.copy(),
        )
    truth = _truth_table(
        snaps, factual, tr, p, seed, n_steps, grace_h, truth_draws, prolonged_days, ids, expected_benefit, truth_stream
    )
    meta = {
        "source": "simulated",
        "created_by": f"crsml simulate --n {n} --seed {seed} --profile {p.name}",
        "seed": seed,
        "profile": p.name,
        "landmarks_h": list(landmarks),
        "grace_h": grace_h,
        "truth_draws": truth_draws,
        "simulator_version": __version__,
    }
    if truth_stream:
        meta["truth_stream"] = truth_stream
    return Cohort(
        patients=patients,
        measurements=measurements,
        vitals=vitals,
        treatments=treatments,
        crs=crs,
        truth=truth,
        meta=meta,
    )


def _vitals_tables(vit: dict[str, list[np.ndarray]], ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    alive = np.stack(vit["alive"], axis=1).ravel()
    n_obs = len(vit["t"])
    cols = {k: np.stack(v, axis=1).ravel()[alive] for k, v in vit.items() if k != "alive"}
    pid = np.repeat(ids, n_obs)[alive]
    vitals = pd.DataFrame(
        {
            "patient_id": pid,
            "time_h": cols["t"],
            "temp_c": np.round(cols["temp_c"], 1),
            "hypotension": cols["hypotension"],
            "vasopressors": cols["vasopressors"],
            "vasopressin": cols["vasopressin"],
            "o2_device": pd.Categorical.from_codes(cols["o2_level"], categories=list(dyn.O2_BY_LEVEL)).astype("string"),
            "o2_flow_lpm": dyn.FLOW_BY_LEVEL[cols["o2_level"]],
        }
    )
    crs = pd.DataFrame({"patient_id": pid, "time_h": cols["t"], "grade": cols["grade"].astype(np.int64)})
    return vitals, crs


def _treatment_table(events: list, ids: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    parts = [pd.DataFrame({"i": idx, "time_h": t, "drug": drug}) for idx, t, drug in events if len(idx)]
    if not parts:
        return pd.DataFrame(
            {
                "patient_id": pd.Series(dtype="string"),
                "time_h": pd.Series(dtype=float),
                "drug": pd.Series(dtype="string"),
                "dose": pd.Series(dtype=float),
                "dose_unit": pd.Series(dtype="string"),
            }
        )
    ev = pd.concat(parts, ignore_index=True).sort_values(["i", "time_h", "drug"], kind="stable")
    w = weight[ev["i"].to_numpy()]
    toci = ev["drug"].to_numpy() == "tocilizumab"
    # 8 mg/kg (12 mg/kg under 30 kg), at most 800 mg; dexamethasone 10 mg (literature.md)
    dose = np.where(toci, np.minimum(np.where(w < 30, 12, 8) * w, 800).round(), 10.0)
    return pd.DataFrame(
        {
            "patient_id": ids[ev["i"].to_numpy()],
            "time_h": ev["time_h"].to_numpy(),
            "drug": ev["drug"].to_numpy(),
            "dose": dose,
            "dose_unit": "mg",
        }
    ).reset_index(drop=True)


def _measurement_table(
    latent: dict[str, np.ndarray], draw_t: np.ndarray, ids: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    n, d = draw_t.shape
    missing_cyto = rng.random((n, d)) < 0.12
    missing_lab = rng.random((n, d)) < 0.08
    frames = []
    for a, values in latent.items():
        miss = missing_cyto if a in CYTOKINE_PANEL else missing_lab
        v = values * np.exp(rng.normal(0, ASSAY_CV, values.shape) - ASSAY_CV**2 / 2)
        keep = ~miss & ~np.isnan(v)
        v = v[keep]
        qual = np.full(v.shape, None, dtype=object)
        if a in LLOQ:
            below = v < LLOQ[a]
            v = np.where(below, LLOQ[a], v)
            qual[below] = "<"
        if a in ULOQ:
            above = v > ULOQ[a]
            v = np.where(above, ULOQ[a], v)
            qual[above] = ">"
        frames.append(
            pd.DataFrame(
                {
                    "patient_id": np.repeat(ids, d).reshape(n, d)[keep],
                    "time_h": draw_t[keep],
                    "analyte": a,
                    "value": np.round(v, 3),
                    "unit": CANONICAL_UNITS[a],
                    "qualifier": qual,
                }
            )
        )
    m = pd.concat(frames, ignore_index=True)
    m = m.sort_values(["patient_id", "time_h", "analyte"], kind="stable").reset_index(drop=True)
    m["qualifier"] = m["qualifier"].astype("string")
    return m


def _truth_table(
    snaps: dict[float, Snapshot],
    factual: dict[float, tuple],
    tr: dyn.Traits,
    p: Profile,
    seed: int,
    n_steps: int,
    grace_h: float,
    draws: int,
    prolonged_days: float,
    ids: np.ndarray,
    effect_draws: bool = False,
    stream: int = 0,
) -> pd.DataFrame | None:
    n = len(ids)
    frames = []
    prolonged_h = prolonged_days * 24.0
    for L, snap in sorted(snaps.items()):
        treated_before = snap.state.toci_doses > 0
        a0, h0, g0 = _continue(snap, tr, p, seed, 0, n_steps, forbid_until_h=L + grace_h)
        a1, h1, g1 = _continue(snap, tr, p, seed, 0, n_steps, force=True)
        # identical outcomes for patients already treated: their factual course
        fa, fh, fg = factual[L]
        for arr, fact in ((a0, fa), (a1, fa), (h0, fh), (h1, fh), (g0, fg), (g1, fg)):
            arr[treated_before] = fact[treated_before]
        # Monte Carlo futures only where the question is open: alive and not yet severe at L
        open_ = np.flatnonzero(~snap.state.dead & (snap.state.support < 3) & (snap.grade < 3))
        p_sev = np.full(n, np.nan)
        p_pro = np.full(n, np.nan)
        benefit = np.full(n, np.nan)
        if len(open_) and draws > 0:
            idx = np.tile(open_, draws)
            mc = Snapshot(snap.step, snap.state.take(idx), snap.grade[idx], snap.il6_fold[idx])
            runs = 100_000 * stream + int(L)
            ma, _, mg = _continue(mc, tr.take(idx), p, seed, 10_000 + runs, n_steps)
            p_sev[open_] = ma.reshape(draws, len(open_)).mean(axis=0)
            p_pro[open_] = (mg > prolonged_h).reshape(draws, len(open_)).mean(axis=0)
            if effect_draws:
                # expected days spared given the state at L: paired futures, with and without a dose now
                _, m0, _ = _continue(mc, tr.take(idx), p, seed, 20_000 + runs, n_steps, forbid_until_h=L + grace_h)
                _, m1, _ = _continue(mc, tr.take(idx), p, seed, 20_000 + runs, n_steps, force=True)
                spared = ((m0 - m1) / 24.0).reshape(draws, len(open_)).mean(axis=0)
                benefit[open_] = np.where(treated_before[open_], np.nan, spared)
        frames.append(
            pd.DataFrame(
                {
                    "patient_id": ids,
                    "landmark_h": L,
                    "p_severe": p_sev,
                    "p_prolonged": p_pro,
                    "benefit_days": benefit,
                    "severe_y0": a0,
                    "severe_y1": a1,
                    "severe_days_y0": h0 / 24.0,
                    "severe_days_y1": h1 / 24.0,
                    "prolonged_y0": g0 > prolonged_h,
                    "prolonged_y1": g1 > prolonged_h,
                    "treated_before": treated_before,
                    "alive": ~snap.state.dead,
                    **{col: getattr(tr, field) for col, field in LATENT_TRAITS.items()},
                    **{f"state_{k}": np.asarray(getattr(snap.state, k), dtype=float) for k in LATENT_STATE},
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else None
