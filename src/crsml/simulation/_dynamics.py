"""The mechanistic patient model, stepped for all patients at once.

CAR-T cells expand while engaged with antigen (blasts plus normal B cells) and kill it, so
expansion peaks in the first one to two weeks and is larger with more antigen and a higher
dose. Engaged CAR-T cells activate myeloid cells, which amplify themselves (an IL-6 / IL-1
loop). Inflammation, which drives fever, hypotension and hypoxia, is the sum of an IL-6
signalling part (blocked by tocilizumab), an IL-1 part and an IFN-gamma part; each patient's
mix is latent, so tocilizumab's benefit varies between patients and is partly visible in the
IL-6 / IFN-gamma ratio. Tocilizumab blocks the receptor: signalling falls within hours, serum
IL-6 rises (less receptor-mediated clearance) and CAR-T expansion is untouched. Steroids damp
T-cell activation and the myeloid loop.

Random numbers come from one generator per (seed, stream, step, run), so two runs of the same
patients (usual care vs tocilizumab now) share their future noise: common random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from crsml.cohort import DEVICE_GRADE, combine_grade, pressor_grade
from crsml.simulation._profiles import Profile

O2_BY_LEVEL = np.array(["none", "nasal_cannula", "high_flow_nasal_cannula", "bipap"], dtype=object)
FLOW_BY_LEVEL = np.array([0.0, 3.0, 40.0, 0.0])
# the ASTCT hypoxia grade of each oxygen level (grading.py decides, not a copy of its rules)
GRADE_BY_LEVEL = np.array(
    [
        DEVICE_GRADE[d] if not (d == "nasal_cannula" and f > 6) else 3
        for d, f in zip(O2_BY_LEVEL, FLOW_BY_LEVEL, strict=True)
    ]
)

STREAM_DYN, STREAM_SIGNS, STREAM_CLIN = 1, 2, 3


@dataclass
class Traits:
    """Latent and observed patient characteristics (arrays of length n)."""

    age: np.ndarray
    blast_pct: np.ndarray
    dose_per_kg: np.ndarray
    cd28: np.ndarray
    site: np.ndarray
    growth: np.ndarray
    gain: np.ndarray
    d6: np.ndarray  # share of inflammation signalled through IL-6
    d1: np.ndarray  # ... through IL-1
    dI: np.ndarray  # ... through IFN-gamma
    frailty: np.ndarray
    il6_base: np.ndarray
    ifng_base: np.ndarray
    ferritin_base: np.ndarray
    crp_base: np.ndarray
    ldh_base: np.ndarray
    platelets_base: np.ndarray
    creatinine_base: np.ndarray
    mcp1_base: np.ndarray

    def take(self, idx: np.ndarray) -> Traits:
        return Traits(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


@dataclass
class State:
    """Everything that evolves (arrays of length n)."""

    cart: np.ndarray
    antigen: np.ndarray
    myeloid: np.ndarray
    noise: np.ndarray
    toci_doses: np.ndarray
    last_toci_h: np.ndarray
    first_anticytokine_h: np.ndarray
    steroid: np.ndarray
    crp: np.ndarray
    ferritin: np.ndarray
    cum_myeloid: np.ndarray
    hypo_hours: np.ndarray
    dead: np.ndarray
    grade_hours_ge1: np.ndarray
    organ: np.ndarray  # vascular leak / organ dysfunction: follows inflammation with a lag
    support: np.ndarray  # organ support level 0, 2, 3, 4: escalated at once, weaned slowly

    def copy(self) -> State:
        return State(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    def take(self, idx: np.ndarray) -> State:
        return State(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def initial_state(tr: Traits) -> State:
    n = len(tr.age)
    return State(
        cart=tr.dose_per_kg / 1e6 * 0.02,
        antigen=tr.blast_pct / 100.0 + 0.03,
        myeloid=np.zeros(n),
        noise=np.zeros(n),
        toci_doses=np.zeros(n, dtype=np.int64),
        last_toci_h=np.full(n, np.nan),
        first_anticytokine_h=np.full(n, np.nan),
        steroid=np.zeros(n, dtype=bool),
        crp=tr.crp_base.copy(),
        ferritin=tr.ferritin_base.copy(),
        cum_myeloid=np.zeros(n),
        hypo_hours=np.zeros(n),
        dead=np.zeros(n, dtype=bool),
        grade_hours_ge1=np.zeros(n),
        organ=np.zeros(n),
        support=np.zeros(n, dtype=np.int64),
    )


def _normal(seed: int, stream: int, step: int, run: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, stream, step, run]).standard_normal(n)


def block_level(st: State, p: Profile) -> np.ndarray:
    return np.where(st.toci_doses > 0, p.toci_block, 0.0)


def activation(st: State) -> np.ndarray:
    """Antigen-engaged CAR-T activity, saturating (cytokine output per cell is bounded)."""
    engaged = st.cart * st.antigen / (st.antigen + 0.05) * np.where(st.steroid, 0.6, 1.0)
    return engaged / (1.0 + engaged / 0.25)


def inflammation(st: State, tr: Traits, p: Profile) -> np.ndarray:
    """Inflammation index driving the clinical signs (before noise)."""
    blk = block_level(st, p)
    damp = np.where(st.steroid, p.steroid_damp, 1.0)
    return damp * (st.myeloid * (tr.d6 * (1.0 - blk) + tr.d1) + 8.0 * tr.dI * activation(st))


def noisy_inflammation(st: State, tr: Traits, p: Profile) -> np.ndarray:
    """Inflammation as the patient feels it: with the current noise and frailty applied."""
    return inflammation(st, tr, p) * np.exp(st.noise) * tr.frailty


def cytokines(st: State, tr: Traits, p: Profile) -> dict[str, np.ndarray]:
    """Serum levels (canonical units) implied by the state."""
    act = activation(st)
    m = st.myeloid
    blk = block_level(st, p)
    clearance = 1.0 - (1.0 - p.toci_il6_clearance) * (blk / p.toci_block if p.toci_block else 0.0)
    return {
        "il6": tr.il6_base * (1.0 + 35.0 * m * (0.4 + tr.d6)) / clearance,
        "ifng": tr.ifng_base * (1.0 + 8000.0 * act * act * (0.3 + tr.dI)),
        "il10": 2.0 + 8.0 * m + 6.0 * act,
        "il2": 1.0 + 3.0 * act,
        "il4": 1.5 + 0.2 * act,
        "tnfa": 3.0 + 2.5 * m,
        "il17a": 2.0 + 0.5 * act,
        "il1ra": 200.0 * (1.0 + 8.0 * m * (0.3 + tr.d1)),
        "sgp130": 250_000.0 * (1.0 + 0.05 * m),
        "mcp1": tr.mcp1_base * (1.0 + 0.9 * m),
        "crp": st.crp,
        "ferritin": st.ferritin,
        "ldh": tr.ldh_base * (1.0 + 0.15 * m) + 400.0 * p.kill * st.cart * st.antigen,
        "platelets": tr.platelets_base * np.exp(-0.004 * st.cum_myeloid),
        "creatinine": tr.creatinine_base * (1.0 + 0.02 * st.hypo_hours),
        "cart_copies": 2_000.0 * st.cart,
    }


def advance(st: State, tr: Traits, p: Profile, seed: int, step: int, run: int) -> None:
    """One time step of the latent biology (in place)."""
    dt = p.dt_h
    n = len(st.cart)
    engaged = st.antigen / (st.antigen + 0.05)
    act = activation(st)
    st.cart *= np.exp((tr.growth * engaged - p.contraction) * dt)
    st.antigen *= np.exp(-p.kill * st.cart * dt)
    blk = block_level(st, p)
    gain = tr.gain * np.where(st.steroid, p.steroid_damp, 1.0)
    net_clear = p.myeloid_clear - p.myeloid_loop * (1.0 - p.toci_loop_damp * blk * tr.d6)
    st.myeloid += (p.myeloid_gain * gain * act - net_clear * st.myeloid) * dt
    st.myeloid = np.maximum(st.myeloid, 0.0)
    st.cum_myeloid += st.myeloid * dt
    il6_signal = st.myeloid * tr.d6 * (1.0 - blk)
    crp_target = tr.crp_base + 110.0 * il6_signal + 15.0 * st.myeloid * tr.d1
    st.crp += (crp_target - st.crp) * (dt / 18.0)
    st.ferritin += (tr.ferritin_base * 0.02 * st.myeloid - (st.ferritin - tr.ferritin_base) / 200.0) * dt
    st.noise = p.noise_ar * st.noise + p.noise_sd * _normal(seed, STREAM_DYN, step, run, n)
    target = noisy_inflammation(st, tr, p)
    lag = np.where(target > st.organ, p.organ_rise_h, p.organ_recovery_h)  # recovery is slow
    st.organ += (target - st.organ) * (1.0 - np.exp(-dt / lag))


@dataclass
class Signs:
    temp_c: np.ndarray
    hypotension: np.ndarray
    vasopressors: np.ndarray
    vasopressin: np.ndarray
    o2_level: np.ndarray  # index into O2_BY_LEVEL / FLOW_BY_LEVEL
    grade: np.ndarray


def observe(st: State, tr: Traits, p: Profile, t: float, seed: int, step: int, run: int) -> Signs:
    """Vital signs and ASTCT grade at an observation time."""
    n = len(st.cart)
    z = np.random.default_rng([seed, STREAM_SIGNS, step, run]).standard_normal((3, n))
    s = noisy_inflammation(st, tr, p)
    temp = 36.9 + 3.2 * s / (s + 1.6) + 0.22 * z[0]
    temp = np.round(np.where(s < p.thr_fever * 0.6, np.minimum(temp, 37.9), temp), 1)  # charted to 0.1 C
    o = st.organ * np.exp(0.1 * z[1])
    thr = np.array([0.0, 0.0, p.thr_g2, p.thr_g3, p.thr_g4])
    raw = np.select([o >= p.thr_g4, o >= p.thr_g3, o >= p.thr_g2], [4, 3, 2], 0)
    # weaning: support stays while organ dysfunction is above 70% of its level's threshold
    keep = (st.support > 0) & (o >= p.wean_fraction * thr[st.support])
    level = np.maximum(raw, np.where(keep, st.support, 0))
    st.support = level
    # how the support shows: circulation (hypotension, vasopressors), breathing (oxygen) or both
    route = np.where(z[2] < -0.4, 0, np.where(z[2] < 0.6, 1, 2))  # 0 circulation, 1 breathing, 2 both
    circ = (route != 1) & (level >= 2)
    breath = (route != 0) & (level >= 2)
    hypo = circ
    pressors = np.where(circ & (level == 4), 2, np.where(circ & (level == 3), 1, 0))
    vasopressin = (pressors >= 1) & (z[0] > 1.5)
    o2 = np.where(breath, np.select([level == 4, level == 3], [3, 2], 1), 0)
    level = o2
    prior = t > st.first_anticytokine_h  # NaN compares False
    organ = np.maximum(pressor_grade(pressors, vasopressin, hypo), GRADE_BY_LEVEL[level])
    grade = combine_grade(temp, prior, organ, st.dead)
    return Signs(temp, hypo, pressors.astype(np.int64), vasopressin, level, grade)


def decide(
    st: State,
    tr: Traits,
    p: Profile,
    grade: np.ndarray,
    il6_fold: np.ndarray,
    t: float,
    seed: int,
    step: int,
    run: int,
    forbid_toci: np.ndarray | None = None,
    force_toci: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The simulated clinician: returns (give tocilizumab now, give a steroid now) and applies them."""
    n = len(st.cart)
    u = np.random.default_rng([seed, STREAM_CLIN, step, run]).random((2, n))
    sites = p.sites
    p3 = np.array([s.p_toci_grade3 for s in sites])[tr.site]
    p2 = np.array([s.p_toci_grade2 for s in sites])[tr.site]
    pp = np.array([s.p_toci_preemptive for s in sites])[tr.site]
    p1 = np.array([s.p_toci_grade1 for s in sites])[tr.site]
    first = st.toci_doses == 0
    at_grade1 = np.maximum(np.where(il6_fold >= 4.0, pp, 0.0), p1 * first)
    prob = np.select([grade >= 3, grade == 2, grade == 1], [p3, p2, at_grade1], 0.0)
    can_repeat = (st.toci_doses < 4) & ~(t - st.last_toci_h < 8.0) & (grade >= 2)
    eligible = (first | can_repeat) & ~st.dead
    toci = eligible & (u[0] < prob)
    if forbid_toci is not None:
        toci &= ~forbid_toci
    if force_toci is not None:
        toci |= force_toci & first & ~st.dead
    refractory = (grade >= 3) & (st.toci_doses > 0) & (t - st.last_toci_h >= 12.0)
    p_ster = np.where(grade >= 4, 0.8, np.where(refractory, p.p_steroid_refractory, 0.0))
    steroid = ~st.steroid & ~st.dead & (u[1] < p_ster)
    st.toci_doses += toci
    st.last_toci_h = np.where(toci, t, st.last_toci_h)
    st.steroid |= steroid
    st.first_anticytokine_h = np.where(np.isnan(st.first_anticytokine_h) & (toci | steroid), t, st.first_anticytokine_h)
    return toci, steroid


def after_observation(st: State, p: Profile, signs: Signs, seed: int, step: int, run: int) -> None:
    """Book-keeping at an observation: time at grade >= 1, hypotension, deaths at grade 4."""
    n = len(st.cart)
    st.grade_hours_ge1 += np.where(signs.grade >= 1, p.obs_every_h, 0.0)
    st.hypo_hours += np.where(signs.hypotension, p.obs_every_h, 0.0)
    u = np.random.default_rng([seed, STREAM_SIGNS, step, run + 7919]).random(n)
    st.dead |= (signs.grade == 4) & (u < p.p_death_grade4_per_step * p.obs_every_h / p.dt_h)
