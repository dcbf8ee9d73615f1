"""Bracketed income tax and equal redistribution (Diss eq. 6.7, 6.8; SPEC §6), numpy or torch.

Conventions (batch-first, like ``econsim.metrics``):

* ``income`` / ``coin`` have shape ``[..., n_agents]`` (agents on the last axis, any number of
  leading world axes);
* ``cutoffs`` ``[K]`` are the bracket lower edges ``m_0 = 0 < m_1 < ... < m_{K-1}``; bracket
  ``b`` is ``(m_b, m_{b+1}]``, width ``m_{b+1} - m_b``, and the last one is unbounded
  (``m_K = inf``);
* ``rates`` are ``[K]`` (one schedule for everyone) or ``[..., K]`` (one schedule per world;
  its leading axes broadcast against ``income``'s leading axes, and a world's schedule
  applies to all of its agents).

Every array function takes numpy arrays (or lists) **or** torch tensors: if any argument is a
``torch.Tensor`` the computation runs in torch and returns a tensor, differentiable in
``rates`` (and in ``income``), on the device of the first tensor and in the widest floating
dtype among the tensors (torch's type promotion: float32 incomes with float64 rates compute
in float64; the default dtype if no tensor is floating); otherwise it returns numpy float64.
The numpy path is a handful of vectorised calls (no loops over agents or worlds) and checks
only that incomes and coin are finite (a one-line ValueError otherwise), because game kernels
call it in their hot loop; :class:`BracketTax` validates schedules.

Mechanism objects (:class:`BracketTax`, :class:`SaezTax`) follow the small
:class:`TaxMechanism` interface: ``reset()``, ``rates(period_state=None)`` for the next tax
period and ``observe(incomes)`` at the end of one (fixed schedules ignore it).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from econsim.core.brackets import (  # noqa: F401 (re-exported: the schedule vocabulary)
    US_FEDERAL_CUTOFFS,
    US_FEDERAL_RATES,
    bracket_index,
    check_schedule,
    finite_list,
    torch_of,
)

if TYPE_CHECKING:
    import pandas as pd

Array = TypeVar("Array")



# --------------------------------------------------------------------------- array helpers


def _dtype(*xs: Any) -> Any:
    """The dtype of a torch computation over ``xs``: torch's promotion of the floating tensors
    among them (float32 with float64 -> float64), or the default dtype if none is floating."""
    torch = sys.modules["torch"]
    dtype = None
    for x in xs:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            dtype = x.dtype if dtype is None else torch.promote_types(dtype, x.dtype)
    return dtype or torch.get_default_dtype()


def _tensor(x: Any, like: Any, dtype: Any) -> Any:
    """``x`` as a ``dtype`` tensor on ``like``'s device (a tensor keeps its autograd graph)."""
    torch = sys.modules["torch"]
    if isinstance(x, torch.Tensor):
        return x if x.dtype == dtype else x.to(dtype)
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=like.device)


def _finite(x: ArrayLike, what: str) -> np.ndarray:
    """``x`` as a float64 array, or a one-line ValueError if an entry is NaN or infinite."""
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all():
        flat = np.flatnonzero(~np.isfinite(a))[0]
        where = np.unravel_index(flat, a.shape) if a.ndim else ()
        raise ValueError(f"{what} must be finite numbers, got {a.flat[flat]} at index "
                         f"{tuple(int(i) for i in where)}")
    return a


def _widths(cutoffs: np.ndarray) -> np.ndarray:
    """Bracket widths ``m_{b+1} - m_b`` with the last bracket unbounded (``inf``)."""
    return np.append(np.diff(cutoffs), np.inf)


def bracket_amounts(income: Array, cutoffs: ArrayLike) -> Array:
    """Income falling in each bracket, ``clip(z - m_b, 0, m_{b+1} - m_b)``: ``[..., n, K]``.

    This is the bracket term of eq. 6.7 and also ``dT/d rate_b``. Negative income has nothing
    in any bracket.
    """
    like = torch_of(income, cutoffs)
    if like is not None:
        torch = sys.modules["torch"]
        dtype = _dtype(income, cutoffs)
        z, m = _tensor(income, like, dtype), _tensor(cutoffs, like, dtype)
        inf = torch.full((1,), float("inf"), dtype=m.dtype, device=m.device)
        widths = torch.cat([m[1:] - m[:-1], inf])
        return torch.minimum((z[..., None] - m).clamp(min=0.0), widths)
    m = np.asarray(cutoffs, dtype=np.float64)
    a = _finite(income, "income")[..., None] - m
    np.maximum(a, 0.0, out=a)
    return np.minimum(a, _widths(m), out=a)


def bracket_tax(income: Array, cutoffs: ArrayLike, rates: Array) -> Array:
    """Tax due on each agent's period income, eq. 6.7: ``[..., n_agents]``.

    ``T(z) = sum_b rate_b * clip(z - m_b, 0, m_{b+1} - m_b)`` with the last bracket unbounded.
    ``rates`` is ``[K]`` or ``[..., K]`` (one schedule per world, broadcast against
    ``income.shape[:-1]``). Non-positive income pays 0. With rates in ``[0, 1]`` the tax is
    between 0 and ``max(z, 0)`` and non-decreasing in ``z``. Not capped at coin: see
    :func:`collect`.
    """
    if np.shape(rates)[-1] != np.shape(cutoffs)[-1]:
        raise ValueError(
            f"rates has {np.shape(rates)[-1]} brackets but cutoffs has "
            f"{np.shape(cutoffs)[-1]}; give one rate per cutoff"
        )
    like = torch_of(income, cutoffs, rates)
    if like is not None:
        dtype = _dtype(income, cutoffs, rates)
        income, r = _tensor(income, like, dtype), _tensor(rates, like, dtype)
    else:
        r = np.asarray(rates, dtype=np.float64)
    amounts = bracket_amounts(income, cutoffs)
    if r.ndim == 1:
        return amounts @ r
    return (amounts @ r[..., None])[..., 0]


def marginal_rate(income: Array, cutoffs: ArrayLike, rates: Array) -> Array:
    """Rate of the bracket the income falls in: ``[..., n_agents]``.

    Bracket ``b`` is ``(m_b, m_{b+1}]`` (eq. 6.7), and the rate returned is the one paid on the
    next coin of income, i.e. the right derivative of ``T``: an income exactly at a cutoff
    ``m_b`` (b >= 1) gets ``rate_b``. Incomes ``<= 0`` get ``rate_0`` (the rate their first
    coin of positive income pays). Shapes and broadcasting as in :func:`bracket_tax`.
    """
    like = torch_of(income, cutoffs, rates)
    if like is not None:
        torch = sys.modules["torch"]
        dtype = _dtype(income, cutoffs, rates)
        z, m, r = (_tensor(x, like, dtype) for x in (income, cutoffs, rates))
        idx = (
            torch.searchsorted(m.to(z.dtype).contiguous(), z.detach().contiguous(), right=True) - 1
        )
        idx = idx.clamp(min=0)
        shape = torch.broadcast_shapes(idx.shape[:-1], r.shape[:-1])
        idx = idx.expand(*shape, idx.shape[-1])
        return torch.gather(r.expand(*shape, r.shape[-1]), -1, idx)
    m = np.asarray(cutoffs, dtype=np.float64)
    r = np.asarray(rates, dtype=np.float64)
    idx = bracket_index(_finite(income, "income"), m)
    if r.ndim == 1:
        return r[idx]
    shape = np.broadcast_shapes(idx.shape[:-1], r.shape[:-1])
    idx = np.broadcast_to(idx, (*shape, idx.shape[-1]))
    return np.take_along_axis(np.broadcast_to(r, (*shape, r.shape[-1])), idx, -1)


def redistribute(income: Array, tax: Array) -> Array:
    """Income after tax and an equal lump-sum transfer, eq. 6.8: ``[..., n_agents]``.

    ``z~_i = z_i - T_i + (1/N) sum_j T_j`` within each world (budget balanced:
    ``sum_i z~_i == sum_i z_i``). Works for numpy and torch alike.
    """
    return income - tax + tax.mean(-1, keepdims=True)


def collect(
    coin: Array, income: Array, cutoffs: ArrayLike, rates: Array
) -> tuple[Array, Array, Array]:
    """Enact one tax period (SPEC §6): ``(tax, transfer, new_coin)``, each ``[..., n_agents]``.

    * ``tax`` = eq. 6.7 on ``income``, capped at the coin in the inventory
      (``min(T(z_i), max(coin_i, 0))``; coin in escrow is not passed in, so it is not taxed);
    * ``transfer`` = the world's revenue split equally, ``(1/N) sum_j tax_j`` (eq. 6.8),
      repeated for every agent;
    * ``new_coin = coin - tax + transfer`` (sums to ``coin``'s sum in every world).
    """
    due = bracket_tax(income, cutoffs, rates)
    like = torch_of(coin, income, cutoffs, rates)
    if like is not None:
        dtype = _dtype(coin, income, cutoffs, rates)
        c = _tensor(coin, like, dtype)
        tax = _torch_minimum(_tensor(due, like, dtype), c.clamp(min=0.0))
        transfer = tax.mean(-1, keepdims=True).expand_as(tax).contiguous()
        return tax, transfer, c - tax + transfer
    c = _finite(coin, "coin")
    tax = np.minimum(due, np.maximum(c, 0.0))
    transfer = np.repeat(tax.mean(-1, keepdims=True), tax.shape[-1], axis=-1)
    return tax, transfer, c - tax + transfer


def enact(coin: np.ndarray, income: np.ndarray, cutoffs: np.ndarray,
          rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tax rule a game with tax periods calls at a period end
    (``econsim.core.capabilities.TaxRule``): :func:`collect`'s ``(tax, transfer)``."""
    tax, transfer, _ = collect(coin, income, cutoffs, rates)
    return tax, transfer


def _torch_minimum(a: Any, b: Any) -> Any:
    """``torch.minimum`` with broadcasting (kept here so torch is only touched when given)."""
    torch = sys.modules["torch"]
    a, b = torch.broadcast_tensors(a, b)
    return torch.minimum(a, b)


# --------------------------------------------------------------------------- validation


# --------------------------------------------------------------------------- mechanisms


@runtime_checkable
class TaxMechanism(Protocol):
    """What a GTB economy asks of a tax mechanism, once per tax period.

    ``rates()`` is called at the start of a period and gives that period's marginal rates
    ``[K]`` for the brackets starting at ``cutoffs``; ``observe(incomes)`` is called when the
    period's taxes are enacted, with the period incomes ``[..., n_agents]`` (pre-tax).
    ``state_dict()`` is what it has learned as plain data (numpy arrays allowed), for
    checkpoints; ``load_state_dict`` restores it; ``schedule()`` shows it (the app, what-if).
    A new mechanism is a factory registered with ``mechanisms.registry.register_mechanism``.
    """

    cutoffs: np.ndarray

    def reset(self) -> None: ...

    def rates(self, period_state: Any = None) -> np.ndarray: ...

    def observe(self, incomes: ArrayLike) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def schedule(self) -> pd.DataFrame:
        """The schedule in force now: one row per bracket, ``lower``, ``upper``, ``rate``."""
        ...


def check_fits(mechanism: Any, cutoffs: ArrayLike) -> Any:
    """``mechanism`` if its bracket edges are the game's ``cutoffs`` exactly (the game applies
    the rates to its own brackets), else a one-line ValueError naming both. The one rule:
    scenario validation, what-ifs, the Mesa model and PPO training all call it."""
    mine = np.asarray(mechanism.cutoffs, np.float64)
    game = np.asarray(cutoffs, np.float64)
    if not np.array_equal(mine, game):
        show = lambda x: ", ".join(f"{v:g}" for v in x)  # noqa: E731
        raise ValueError(f"mechanism: its bracket edges ({show(mine)}) are not the game's "
                         f"tax_cutoffs ({show(game)}); give the schedule the game's edges, or "
                         "set the game's tax_cutoffs (env.tax_cutoffs) to its thresholds")
    return mechanism


class BracketTax:
    """A fixed bracketed schedule (eq. 6.7); also a :class:`TaxMechanism`.

    ``BracketTax(thresholds, rates)``: ``thresholds`` are the bracket lower edges (first 0,
    strictly increasing), ``rates`` one marginal rate in ``[0, 1]`` per bracket; the last
    bracket is unbounded. Bad input raises a one-line ValueError.
    """

    def __init__(self, thresholds: ArrayLike, rates: ArrayLike) -> None:
        self.cutoffs, self._rates = check_schedule(thresholds, rates)

    def tax(self, income: Array) -> Array:
        """Tax due (eq. 6.7) on ``income`` ``[..., n_agents]``, numpy or torch in, same out."""
        return bracket_tax(income, self.cutoffs, self._rates)

    def marginal_rate(self, income: Array) -> Array:
        """Rate on the next coin of ``income`` (see :func:`marginal_rate`)."""
        return marginal_rate(income, self.cutoffs, self._rates)

    def after_tax(self, income: Array) -> Array:
        """Income after tax and equal redistribution within each world (eq. 6.8)."""
        return redistribute(income, self.tax(income))

    def schedule(self) -> pd.DataFrame:
        """One row per bracket: ``lower``, ``upper`` (``inf`` for the last) and ``rate``."""
        import pandas as pd

        upper = np.append(self.cutoffs[1:], np.inf)
        return pd.DataFrame({"lower": self.cutoffs, "upper": upper, "rate": self._rates})

    # TaxMechanism
    def reset(self) -> None:
        """Nothing to forget: the schedule is fixed."""

    def rates(self, period_state: Any = None) -> np.ndarray:
        """The fixed rates ``[K]`` (a copy), whatever the period state."""
        return self._rates.copy()

    def observe(self, incomes: ArrayLike) -> None:
        """Ignored: a fixed schedule does not learn."""

    def state_dict(self) -> dict[str, Any]:
        """Nothing learned."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BracketTax)
            and np.array_equal(self.cutoffs, other.cutoffs)
            and np.array_equal(self._rates, other._rates)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BracketTax(thresholds={self.cutoffs.tolist()}, rates={self._rates.tolist()})"


# --------------------------------------------------------------------------- presets


def us_federal() -> BracketTax:
    """SPEC §6: 2018 US single-filer rates on brackets scaled to coin (USD / 1000)."""
    return BracketTax(US_FEDERAL_CUTOFFS, US_FEDERAL_RATES)


def free_market(thresholds: ArrayLike = US_FEDERAL_CUTOFFS) -> BracketTax:
    """No tax: every rate 0 (US-federal brackets by default, so K matches the designers)."""
    return BracketTax(thresholds, np.zeros(len(thresholds)))


def flat(rate: float = 0.3, thresholds: ArrayLike = US_FEDERAL_CUTOFFS) -> BracketTax:
    """The same ``rate`` on every bracket (US-federal brackets by default)."""
    return BracketTax(thresholds, np.full(len(thresholds), rate, dtype=np.float64))


def custom(thresholds: ArrayLike, rates: ArrayLike) -> BracketTax:
    """Any user schedule (validated like :class:`BracketTax`)."""
    return BracketTax(thresholds, rates)


PRESETS: dict[str, Callable[..., BracketTax]] = {
    "us_federal": us_federal,
    "free_market": free_market,
    "flat": flat,
    "custom": custom,
}
"""Named fixed schedules; ``preset(name, **params)`` builds one."""


def preset(name: str, **kw: Any) -> BracketTax:
    """The named schedule from :data:`PRESETS`, with its parameters (one-line ValueError for an
    unknown name or parameter)."""
    if name not in PRESETS:
        raise ValueError(f"unknown tax preset {name!r}; allowed: {', '.join(PRESETS)}")
    make = PRESETS[name]
    allowed = list(inspect.signature(make).parameters)
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise ValueError(
            f"tax preset {name!r} got unknown parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed) or 'none'}"
        )
    try:
        return make(**kw)
    except TypeError as err:  # a required parameter is missing
        raise ValueError(f"tax preset {name!r}: {err}; parameters: {', '.join(allowed)}") from err


# --------------------------------------------------------------------------- Saez


WELFARE_WEIGHTS = ("inverse_income", "utilitarian", "revenue")
"""Social marginal welfare weights ``g_i`` that :func:`saez_terms` knows (see there)."""


def estimate_elasticity(
    incomes: ArrayLike,
    marginal_rates: ArrayLike,
    *,
    default: float = 0.5,
    bounds: tuple[float, float] = (0.05, 3.0),
    min_samples: int = 20,
) -> float:
    """Elasticity ``e`` of income with respect to the net-of-tax rate ``1 - tau``.

    OLS with intercept of ``log z`` on ``log(1 - tau)`` over the (income, marginal rate)
    pairs, one pair per agent-period (SPEC §6, as the AI-Economist's Saez planner does):
    ``log z = c + e log(1 - tau)``; the slope ``e`` is clipped to ``bounds``. Pairs with
    ``z <= 0``, ``tau >= 1`` or non-finite values are dropped. ``default`` is returned when
    fewer than ``min_samples`` pairs remain, when ``log(1 - tau)`` does not vary (e.g. a fixed
    flat schedule) or when the fit is not finite. Note this is a cross-section: agents with
    high income face high marginal rates, which biases ``e`` down (even negative), hence the
    positive lower bound.
    """
    z = np.asarray(incomes, dtype=np.float64).ravel()
    tau = np.asarray(marginal_rates, dtype=np.float64).ravel()
    if z.shape != tau.shape:
        raise ValueError(
            f"incomes ({z.size} values) and marginal_rates ({tau.size} values) must pair up"
        )
    keep = np.isfinite(z) & np.isfinite(tau) & (z > 0) & (tau < 1)
    if keep.sum() < max(min_samples, 2):
        return float(default)
    x, y = np.log1p(-tau[keep]), np.log(z[keep])
    if np.ptp(x) < 1e-9:
        return float(default)
    design = np.stack([np.ones_like(x), x], axis=1)
    (_, e), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(np.clip(e, *bounds)) if np.isfinite(e) else float(default)


def saez_terms(
    incomes: ArrayLike, cutoffs: ArrayLike, welfare: str = "inverse_income"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bracket ``b``: ``(a_b, G_b, n_b)`` from the incomes strictly above its cutoff ``m_b``.

    Only positive, finite incomes count (``z_i > 0``); ``n_b`` is how many lie above ``m_b``.

    * ``a_b = zbar_b / (zbar_b - m_b)`` with ``zbar_b`` the mean income above ``m_b``: the
      Pareto-tail parameter measured by the mean ratio of Saez (2001, NBER w7628), which equals
      the Pareto exponent ``a`` for a Pareto tail (whose mean above ``m`` is ``a m / (a - 1)``);
      at ``m_0 = 0`` it is 1.
    * ``G_b`` = the mean social marginal welfare weight of the incomes above ``m_b``, the weights
      normalised to mean 1 over all incomes: ``"inverse_income"`` ``g_i ∝ 1 / z_i`` (log
      utility; for a Pareto(a, z_min) population ``G(m) = z_min / m``), ``"utilitarian"``
      ``g_i = 1`` (so ``G = 1`` and all rates are 0), ``"revenue"`` ``g_i = 0`` (so ``G = 0``:
      the revenue-maximising rates).

    Brackets with nobody above their cutoff get ``a = G = nan`` and ``n = 0``.
    """
    if welfare not in WELFARE_WEIGHTS:
        raise ValueError(
            f"unknown welfare weights {welfare!r}; allowed: {', '.join(WELFARE_WEIGHTS)}"
        )
    z = np.asarray(incomes, dtype=np.float64).ravel()
    z = z[np.isfinite(z) & (z > 0)]
    m = np.asarray(cutoffs, dtype=np.float64)
    if welfare == "inverse_income":
        g = 1.0 / z
        g = g / g.mean() if z.size else g
    else:
        g = np.full(z.shape, 1.0 if welfare == "utilitarian" else 0.0)
    above = z > m[:, None]  # [K, n]
    n = above.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        zbar = (above * z).sum(1) / n
        a = zbar / (zbar - m)
        big_g = (above * g).sum(1) / n
    return a, big_g, n


def saez_rates(
    incomes: ArrayLike,
    cutoffs: ArrayLike,
    elasticity: float,
    welfare: str = "inverse_income",
    min_tail: int = 2,
) -> np.ndarray:
    """Saez rates ``[K]``: ``tau_b = (1 - G_b) / (1 - G_b + a_b e)``, clipped to ``[0, 1]``.

    The optimal marginal rate without income effects (Saez 2001, NBER w7628; its top-rate
    form ``tau = (1 - g) / (1 - g + a e)``), evaluated at each bracket's lower cutoff ``m_b``
    with ``a_b`` and ``G_b`` from :func:`saez_terms` and elasticity ``e``. A bracket with fewer
    than ``min_tail`` incomes above its cutoff copies the rate of the bracket below it (0 for
    the first bracket). With ``m_0 = 0`` and ``"inverse_income"`` weights, ``tau_0 = 0``.
    """
    a, big_g, n = saez_terms(incomes, cutoffs, welfare)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.clip((1 - big_g) / (1 - big_g + a * float(elasticity)), 0.0, 1.0)
    ok = (n >= min_tail) & np.isfinite(tau)
    # carry the last estimated rate up into brackets without data (vectorised forward fill)
    last = np.maximum.accumulate(np.where(ok, np.arange(tau.size), -1))
    return np.where(last >= 0, tau[np.maximum(last, 0)], 0.0)


class SaezTax:
    """The AI-Economist's Saez planner, re-implemented from SPEC §6 and NBER w7628.

    Each tax period it is told the agents' period incomes (:meth:`observe`); it keeps the last
    ``buffer_size`` (income, marginal rate) pairs, one per agent-period, the marginal rate being
    the one its own schedule applied (unless given). :meth:`rates` then estimates the
    elasticity ``e`` (:func:`estimate_elasticity`, or the fixed ``elasticity`` if given) and
    returns :func:`saez_rates` of the buffered incomes, which also become the schedule used to
    label the next observations. Before any positive income is seen it returns
    ``initial_rates`` (default all 0, the free market). :meth:`compute` gives the same rates as
    a :class:`BracketTax`.
    """

    def __init__(
        self,
        thresholds: ArrayLike = US_FEDERAL_CUTOFFS,
        *,
        elasticity: float | None = None,
        default_elasticity: float = 0.5,
        elasticity_bounds: tuple[float, float] = (0.05, 3.0),
        welfare: str = "inverse_income",
        buffer_size: int = 10_000,
        min_samples: int = 20,
        min_tail: int = 2,
        initial_rates: ArrayLike | None = None,
    ) -> None:
        start = np.zeros(np.size(thresholds)) if initial_rates is None else initial_rates
        self.cutoffs, self._initial = check_schedule(thresholds, start)
        lo, hi = elasticity_bounds
        if not 0 < lo <= hi:
            raise ValueError(
                f"elasticity_bounds must satisfy 0 < low <= high, got {elasticity_bounds}"
            )
        if elasticity is not None and not (np.isfinite(elasticity) and elasticity > 0):
            raise ValueError(f"elasticity must be a positive number or None, got {elasticity}")
        if welfare not in WELFARE_WEIGHTS:
            raise ValueError(f"unknown welfare {welfare!r}; allowed: {', '.join(WELFARE_WEIGHTS)}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, got {buffer_size}")
        self.fixed_elasticity = elasticity
        self.default_elasticity = float(default_elasticity)
        self.elasticity_bounds = (float(lo), float(hi))
        self.welfare = welfare
        self.buffer_size = int(buffer_size)
        self.min_samples = int(min_samples)
        self.min_tail = int(min_tail)
        self.reset(clear=True)

    def reset(self, clear: bool = False) -> None:
        """New episode: back to the initial rates. ``clear=True`` also forgets the buffer
        (by default it is kept, so the estimate improves across episodes)."""
        self._current = self._initial.copy()
        if clear:
            self.incomes = np.zeros(0)
            self.marginal_rates = np.zeros(0)

    def observe(self, incomes: ArrayLike, marginal_rates: ArrayLike | None = None) -> None:
        """Add one period's pre-tax incomes ``[..., n_agents]`` (and the marginal rates they
        faced; by default those of the schedule last returned by :meth:`rates`)."""
        z = np.asarray(incomes, dtype=np.float64).ravel()
        if marginal_rates is None:
            tau = marginal_rate(z, self.cutoffs, self._current)
        else:
            tau = np.broadcast_to(np.asarray(marginal_rates, dtype=np.float64), np.shape(incomes))
        keep = -self.buffer_size
        self.incomes = np.concatenate([self.incomes, z])[keep:]
        self.marginal_rates = np.concatenate([self.marginal_rates, tau.ravel()])[keep:]

    def elasticity(self) -> float:
        """The fixed elasticity, or the OLS estimate over the buffer (see
        :func:`estimate_elasticity`)."""
        if self.fixed_elasticity is not None:
            return float(self.fixed_elasticity)
        return estimate_elasticity(
            self.incomes,
            self.marginal_rates,
            default=self.default_elasticity,
            bounds=self.elasticity_bounds,
            min_samples=self.min_samples,
        )

    def compute(self) -> BracketTax:
        """The Saez schedule for the buffered incomes (initial rates if none is positive)."""
        if not (self.incomes > 0).any():
            return BracketTax(self.cutoffs, self._initial)
        tau = saez_rates(self.incomes, self.cutoffs, self.elasticity(), self.welfare, self.min_tail)
        return BracketTax(self.cutoffs, tau)

    def rates(self, period_state: Any = None) -> np.ndarray:
        """Rates ``[K]`` for the next period (and remembered for labelling observations)."""
        self._current = self.compute().rates()
        return self._current.copy()

    def state_dict(self) -> dict[str, Any]:
        """The buffer of (income, marginal rate) pairs and the schedule in force."""
        return {"incomes": self.incomes.copy(), "marginal_rates": self.marginal_rates.copy(),
                "current": self._current.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.incomes = np.asarray(state["incomes"], np.float64).copy()
        self.marginal_rates = np.asarray(state["marginal_rates"], np.float64).copy()
        self._current = np.asarray(state["current"], np.float64).copy()

    def schedule(self) -> pd.DataFrame:
        """The schedule now in force, as :meth:`BracketTax.schedule`."""
        return BracketTax(self.cutoffs, self._current).schedule()

    def __repr__(self) -> str:
        return (
            f"SaezTax(thresholds={self.cutoffs.tolist()}, welfare={self.welfare!r}, "
            f"buffered={self.incomes.size})"
        )
