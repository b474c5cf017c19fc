"""Latent symptom trajectories: what a course's scores would be after n infusions.

Each course gets a class (early / gradual / late responder, partial, non-responder, or
maintained) and a piecewise-linear curve of the fraction of its baseline severity left after
n infusions: (0, f0) -> (n1, v1) -> (n2, v2), flat afterwards. Responders cross 45% of
baseline at n1 infusions, so their timing class (docs/definitions.md: early <= 2, gradual 3-4, late >= 5)
is set by n1. A same-day `post` score sits `acute` lower (the transient effect), and some
responders relapse after the course ends.
"""

from __future__ import annotations

import numpy as np

from pipeline.demo.catalogue import IND6, PLANNED, SINGLE, TW4

Table = dict[str, np.ndarray]

EARLY, GRADUAL, LATE, PARTIAL, NON, MAINTAINED = range(6)
RESPONDERS = (EARLY, GRADUAL, LATE)

# Class mix per induction protocol. With the drop-outs below (more common among
# non-responders) this puts evaluable IND6 courses near the published real-world figures:
# about half respond, about a third do not (evidence.md: McInnes 2022 53.6%,
# Alnefeesi 2022 pooled 45%).
CLASS_P = {
    IND6: (0.23, 0.24, 0.12, 0.16, 0.25),
    TW4: (0.20, 0.23, 0.14, 0.16, 0.27),
    SINGLE: (0.38, 0.0, 0.0, 0.22, 0.40),
}
# Probability of stopping after infusion 1, and after a later infusion short of the plan.
STOP_FIRST = np.array([0.09, 0.10, 0.10, 0.18, 0.31, 0.0])
STOP_LATER = np.array([0.20, 0.25, 0.25, 0.32, 0.40, 0.30])
RELAPSE_P = 0.45  # responders whose scores climb back after the course (without maintenance)


def draw_classes(rng: np.random.Generator, protocol: np.ndarray) -> np.ndarray:
    """A trajectory class per induction course, from its protocol's class mix."""
    cumulative = np.zeros((max(CLASS_P) + 1, 5))
    for proto, p in CLASS_P.items():
        cumulative[proto] = np.cumsum(p)
    u = rng.random(len(protocol))
    return np.minimum((u[:, None] >= cumulative[protocol]).sum(axis=1), NON)


def administered_count(rng: np.random.Generator, protocol: np.ndarray,
                       klass: np.ndarray) -> np.ndarray:
    """Infusions a course will get if nothing cuts it short (drop-outs included)."""
    planned = PLANNED[protocol]
    u = rng.random(len(protocol))
    later = rng.integers(2, np.maximum(planned, 3))
    first = STOP_FIRST[klass]
    k = np.where(u < first, 1, np.where(u < first + STOP_LATER[klass], later, planned))
    return np.where(planned <= 2, planned, k)


def induction_curves(rng: np.random.Generator, klass: np.ndarray,
                     protocol: np.ndarray) -> Table:
    """Curve parameters of induction courses by class (see module docstring)."""
    n = len(klass)
    u = rng.random((6, n))
    last = PLANNED[protocol].astype(float)
    # infusions to reach 45% of baseline
    n1 = np.select(
        [klass == EARLY, klass == GRADUAL, klass == LATE],
        [np.where(protocol == SINGLE, 0.9 + 0.1 * u[0], 0.9 + 1.1 * u[0]),
         2.1 + 1.9 * u[0],
         4.1 + (np.maximum(last, 6.0) - 4.3) * u[0]],
        default=0.0,
    )
    responder = np.isin(klass, RESPONDERS)
    r_final = np.select(
        [responder, klass == PARTIAL],
        [0.06 + 0.34 * u[1], 0.54 + 0.18 * u[1]],
        default=0.82 + 0.23 * u[1],
    )
    slow_end = np.where(klass == PARTIAL, 2.5 + 2.5 * u[2], 1.5 + 2.5 * u[2])
    curve = {
        "f0": np.ones(n),
        "n1": np.where(responder, n1, slow_end / 2),
        "v1": np.where(responder, 0.45, (1 + r_final) / 2),
        "n2": np.where(responder, n1 + 2, slow_end),
        "v2": r_final,
        "acute": np.select([responder, klass == PARTIAL], [0.05 + 0.20 * u[3], 0.12 * u[3]],
                           default=0.06 * u[3]),
        "relapse_day": np.where(responder & (u[4] < RELAPSE_P), 14 + 31 * u[5], np.inf),
        "relapse_amp": 0.55 + 0.35 * rng.random(n),
    }
    return curve


def maintenance_curves(rng: np.random.Generator, level_end: np.ndarray) -> Table:
    """Maintenance holds the level an induction ended at, drifting a little."""
    n = len(level_end)
    u = rng.random((3, n))
    return {
        "f0": level_end,
        "n1": np.full(n, 2.0),
        "v1": level_end + 0.10 * (u[0] - 0.5),
        "n2": np.full(n, 6.0),
        "v2": level_end + 0.20 * u[1] - 0.05,
        "acute": 0.05 * u[2],
        "relapse_day": np.full(n, np.inf),
        "relapse_amp": np.zeros(n),
    }


def level(curve: Table, course: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Fraction of baseline severity left after n infusions, for rows of the given courses."""
    f0, n1, v1, n2, v2 = (curve[key][course] for key in ("f0", "n1", "v1", "n2", "v2"))
    first = f0 + (v1 - f0) * np.clip(n / np.maximum(n1, 1e-9), 0, 1)
    second = v1 + (v2 - v1) * np.clip((n - n1) / np.maximum(n2 - n1, 1e-9), 0, 1)
    return np.where(n <= n1, first, second)


def relapse(curve: Table, course: np.ndarray, fraction: np.ndarray,
            days_after: np.ndarray) -> np.ndarray:
    """Fraction after a relapse that starts `relapse_day` after the course's last infusion."""
    climb = np.clip((days_after - curve["relapse_day"][course]) / 14, 0, 1)
    climb = np.nan_to_num(climb, nan=0.0)
    return fraction + (1 - fraction) * curve["relapse_amp"][course] * climb
