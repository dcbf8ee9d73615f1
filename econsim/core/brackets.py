"""Bracket schedules: the vocabulary shared by games with tax periods
(``econsim.core.capabilities.TaxPeriods``) and the tax mechanisms (``mechanisms.tax``).

Cutoffs ``[K]`` are the brackets' lower edges ``m_0 = 0 < m_1 < ... < m_{K-1}`` (eq. 6.7);
numpy only (a torch tensor is accepted where noted, torch is never imported).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

US_FEDERAL_CUTOFFS = (0.0, 9.7, 39.475, 84.2, 160.725, 204.1, 510.3)
"""SPEC §6: 2018 single-filer bracket edges in coin (USD / 1000)."""
US_FEDERAL_RATES = (0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37)
"""SPEC §6: 2018 single-filer marginal rates."""


def torch_of(*xs: Any) -> Any:
    """The first torch tensor among ``xs`` (None if there is none; torch is never imported)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    for x in xs:
        if isinstance(x, torch.Tensor):
            return x
    return None


def bracket_index(income: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """Index of the bracket whose rate the next coin of ``income`` pays (numpy; cheap for the
    few brackets of a schedule): the number of cutoffs above the first that are <= income."""
    return (income[..., None] >= cutoffs[1:]).sum(-1)


def finite_list(values: Any, what: str) -> np.ndarray:
    """``values`` as a 1-D finite float array, or a one-line ValueError naming ``what``."""
    if torch_of(values) is not None:
        values = values.detach().cpu().numpy()
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a list of numbers, got {values!r}") from err
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D list of numbers, got shape {x.shape}")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ValueError(f"{what} must be finite numbers, got {x[bad[0]]} at bracket {bad[0]}")
    return x


def check_schedule(thresholds: Any, rates: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(cutoffs, rates)`` float arrays, or a one-line ValueError saying what is
    wrong and what is allowed: cutoffs start at 0 and strictly increase; one rate per cutoff,
    each in ``[0, 1]``."""
    m = finite_list(thresholds, "thresholds")
    r = finite_list(rates, "rates")
    if m[0] != 0:
        raise ValueError(f"thresholds must start at 0 (the first bracket's lower edge), got {m[0]}")
    if (np.diff(m) <= 0).any():
        raise ValueError(f"thresholds must be strictly increasing, got {m.tolist()}")
    if r.size != m.size:
        raise ValueError(
            f"got {r.size} rates for {m.size} thresholds; give exactly one rate per bracket"
        )
    bad = np.flatnonzero((r < 0) | (r > 1))
    if bad.size:
        raise ValueError(f"rates must lie in [0, 1], got {r[bad[0]]} at bracket {bad[0]}")
    return m, r
