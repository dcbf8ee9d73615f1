"""Bracketed tax (eq. 6.7), redistribution (eq. 6.8), presets and the Saez planner (SPEC §6)."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mechanisms.tax import (
    PRESETS,
    US_FEDERAL_CUTOFFS,
    US_FEDERAL_RATES,
    BracketTax,
    SaezTax,
    TaxMechanism,
    bracket_amounts,
    bracket_tax,
    collect,
    estimate_elasticity,
    marginal_rate,
    preset,
    redistribute,
    saez_rates,
    saez_terms,
)

CUT = np.array(US_FEDERAL_CUTOFFS)
FAST = settings(max_examples=50, deadline=None)


@st.composite
def schedules(draw, per_world=False):
    """``(income [B, N], cutoffs [K], rates [K] or [B, K])`` with rates in [0, 1]."""
    k = draw(st.integers(1, 7))
    gaps = draw(arrays(np.float64, k - 1, elements=st.floats(0.5, 100)))
    cutoffs = np.concatenate([[0.0], np.cumsum(gaps)])
    batch, n = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    income = draw(arrays(np.float64, (batch, n), elements=st.floats(-50, 1000)))
    shape = (batch, k) if per_world else (k,)
    rates = draw(arrays(np.float64, shape, elements=st.floats(0, 1)))
    return income, cutoffs, rates


# --------------------------------------------------------------------------- eq. 6.7 by hand


def test_us_federal_by_hand():
    us = preset("us_federal")
    expected = 0.1 * 9.7 + 0.12 * 29.775 + 0.22 * 10.525  # income 50 = 9.7 + 29.775 + 10.525
    assert us.tax(np.array([50.0]))[0] == pytest.approx(expected)
    assert us.tax(np.array([9.7]))[0] == pytest.approx(0.97)
    assert us.tax(np.array([0.0, -5.0])).tolist() == [0.0, 0.0]
    top = 0.1 * 9.7 + 0.12 * 29.775 + 0.22 * 44.725 + 0.24 * 76.525 + 0.32 * 43.375
    top += 0.35 * 306.2 + 0.37 * (600 - 510.3)
    assert us.tax(np.array([600.0]))[0] == pytest.approx(top)


def test_marginal_rate_is_the_rate_on_the_next_coin():
    z = np.array([-1.0, 0.0, 5.0, 9.7, 9.71, 50.0, 510.3, 1e6])
    got = marginal_rate(z, CUT, US_FEDERAL_RATES)
    assert got.tolist() == [0.10, 0.10, 0.10, 0.12, 0.12, 0.22, 0.37, 0.37]


def test_per_world_rates_apply_to_all_agents_of_that_world():
    income = np.array([[5.0, 50.0, 300.0], [5.0, 50.0, 300.0]])
    rates = np.stack([np.array(US_FEDERAL_RATES), np.zeros(7)])
    tax = bracket_tax(income, CUT, rates)
    assert np.allclose(tax[0], bracket_tax(income[0], CUT, US_FEDERAL_RATES))
    assert (tax[1] == 0).all()
    # one income row against two worlds' schedules broadcasts to [2, 3]
    assert np.allclose(bracket_tax(income[0], CUT, rates), tax)
    assert np.allclose(marginal_rate(income[0], CUT, rates)[1], 0.0)


@FAST
@given(schedules(per_world=True))
def test_per_world_equals_one_world_at_a_time(data):
    income, cutoffs, rates = data
    tax = bracket_tax(income, cutoffs, rates)
    mr = marginal_rate(income, cutoffs, rates)
    for w in range(income.shape[0]):
        assert np.allclose(tax[w], bracket_tax(income[w], cutoffs, rates[w]))
        assert np.array_equal(mr[w], marginal_rate(income[w], cutoffs, rates[w]))


# --------------------------------------------------------------------------- properties


@FAST
@given(schedules())
def test_tax_between_zero_and_income(data):
    income, cutoffs, rates = data
    tax = bracket_tax(income, cutoffs, rates)
    assert tax.shape == income.shape
    assert (tax >= 0).all()
    assert (tax <= np.maximum(income, 0) * (1 + 1e-12) + 1e-9).all()
    assert (tax[income <= 0] == 0).all()


@FAST
@given(schedules())
def test_tax_is_monotone_and_its_slope_is_the_marginal_rate(data):
    income, cutoffs, rates = data
    z = np.sort(income.ravel())
    tax = bracket_tax(z, cutoffs, rates)
    assert (np.diff(tax) >= -1e-9).all()
    h = 1e-6  # right derivative: T(z + h) - T(z) = h * rate of the bracket z is in
    zp = z[(z >= 0) & (np.abs(z[:, None] - cutoffs).min(1) > 1e-3)]
    slope = (bracket_tax(zp + h, cutoffs, rates) - bracket_tax(zp, cutoffs, rates)) / h
    assert np.allclose(slope, marginal_rate(zp, cutoffs, rates), atol=1e-3)


@FAST
@given(schedules(per_world=True))
def test_redistribution_is_budget_balanced(data):
    income, cutoffs, rates = data
    tax = bracket_tax(income, cutoffs, rates)
    after = redistribute(income, tax)
    assert np.allclose(after.sum(-1), income.sum(-1))
    # eq. 6.8 with every agent's share equal
    assert np.allclose(after - income + tax, tax.mean(-1, keepdims=True))


@FAST
@given(schedules(per_world=True), st.data())
def test_coin_capped_collection_is_budget_balanced(data, draw):
    income, cutoffs, rates = data
    coin = draw.draw(arrays(np.float64, income.shape, elements=st.floats(0, 200)))
    tax, transfer, new_coin = collect(coin, income, cutoffs, rates)
    assert (tax >= 0).all()
    assert (tax <= coin).all()
    assert (tax <= bracket_tax(income, cutoffs, rates) + 1e-12).all()
    assert np.allclose(new_coin.sum(-1), coin.sum(-1))
    assert np.allclose(transfer, tax.mean(-1, keepdims=True))
    assert np.allclose(new_coin, coin - tax + transfer)


def test_collect_caps_at_coin_by_hand():
    tax, transfer, new = collect([10.0, 1.0, 0.0], [50.0, 50.0, 0.0], CUT, US_FEDERAL_RATES)
    assert tax.tolist() == pytest.approx([6.8585, 1.0, 0.0])
    assert transfer.tolist() == pytest.approx([7.8585 / 3] * 3)
    assert new.sum() == pytest.approx(11.0)


# --------------------------------------------------------------------------- torch


@FAST
@given(schedules(per_world=True), st.data())
def test_numpy_and_torch_agree(data, draw):
    income, cutoffs, rates = data
    coin = draw.draw(arrays(np.float64, income.shape, elements=st.floats(0, 200)))
    t = torch.from_numpy
    pairs = [
        (bracket_tax(income, cutoffs, rates), bracket_tax(t(income), cutoffs, t(rates))),
        (marginal_rate(income, cutoffs, rates), marginal_rate(t(income), cutoffs, t(rates))),
        (bracket_amounts(income, cutoffs), bracket_amounts(t(income), cutoffs)),
    ]
    np_collect = collect(coin, income, cutoffs, rates)
    pairs += zip(np_collect, collect(t(coin), income, cutoffs, t(rates)), strict=True)
    tax = bracket_tax(income, cutoffs, rates)
    pairs.append((redistribute(income, tax), redistribute(t(income), t(tax))))
    for want, got in pairs:
        assert isinstance(got, torch.Tensor) and isinstance(want, np.ndarray)
        assert got.shape == want.shape
        assert np.allclose(got.numpy(), want, atol=1e-12)


@FAST
@given(schedules())
def test_gradient_in_rates_is_the_income_in_each_bracket(data):
    income, cutoffs, rates = data
    r = torch.tensor(rates, requires_grad=True)
    for z in income.ravel():
        (grad,) = torch.autograd.grad(bracket_tax(torch.tensor([z]), cutoffs, r).sum(), r)
        widths = np.append(np.diff(cutoffs), np.inf)
        assert np.allclose(grad.numpy(), np.clip(z - cutoffs, 0, widths))


def test_torch_keeps_dtype_and_differentiates_per_world_rates():
    rates = torch.full((3, 7), 0.2, dtype=torch.float32, requires_grad=True)
    income = np.array([[5.0, 50.0], [0.0, 20.0], [600.0, 1.0]])
    tax = BracketTax(US_FEDERAL_CUTOFFS, US_FEDERAL_RATES)  # numpy schedule, torch income
    assert tax.tax(torch.tensor(income)).dtype == torch.float64
    out = bracket_tax(income, CUT, rates)
    assert out.dtype == torch.float32 and out.shape == (3, 2)
    (grad,) = torch.autograd.grad(out.sum(), rates)
    assert np.allclose(grad.numpy(), bracket_amounts(income, CUT).sum(1), atol=1e-4)
    # any one tensor argument switches to torch (here only the coin)
    tax, transfer, new = collect(torch.tensor(income), income, CUT, US_FEDERAL_RATES)
    assert all(isinstance(x, torch.Tensor) for x in (tax, transfer, new))
    assert np.allclose(new.numpy(), collect(income, income, CUT, US_FEDERAL_RATES)[2])


# --------------------------------------------------------------------------- schedules


def test_schedule_table_and_presets():
    table = preset("us_federal").schedule()
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["lower", "upper", "rate"]
    assert table["rate"].tolist() == list(US_FEDERAL_RATES)
    assert table["upper"].iloc[-1] == np.inf and table["upper"].iloc[0] == 9.7
    assert (preset("free_market").rates() == 0).all()
    assert (preset("flat").rates() == 0.3).all()
    assert (preset("flat", rate=0.5, thresholds=[0, 10]).rates() == 0.5).all()
    custom = preset("custom", thresholds=[0, 10], rates=[0.0, 0.5])
    assert custom == BracketTax([0, 10], [0.0, 0.5])
    assert custom.tax(np.array([20.0]))[0] == pytest.approx(5.0)
    assert custom.after_tax(np.array([20.0, 0.0])).tolist() == pytest.approx([17.5, 2.5])
    assert set(PRESETS) == {"us_federal", "free_market", "flat", "custom"}
    for mech in (preset("us_federal"), SaezTax()):
        assert isinstance(mech, TaxMechanism)
        mech.reset()
        mech.observe(np.ones((2, 4)))
        assert mech.rates().shape == (7,)


@pytest.mark.parametrize(
    ("thresholds", "rates", "words"),
    [
        ([0, 10, np.nan], [0.1, 0.2, 0.3], ["thresholds", "finite"]),
        ([0, 10], [0.1, np.nan], ["rates", "finite"]),
        ([0, 10], [0.1, -0.2], ["[0, 1]", "-0.2"]),
        ([0, 10], [0.1, 1.5], ["[0, 1]", "1.5"]),
        ([0, 20, 10], [0.1, 0.2, 0.3], ["strictly increasing"]),
        ([0, 10, 10], [0.1, 0.2, 0.3], ["strictly increasing"]),
        ([5, 10], [0.1, 0.2], ["start at 0"]),
        ([0, 10], [0.1, 0.2, 0.3], ["3 rates for 2 thresholds", "one rate per bracket"]),
        ([], [], ["non-empty"]),
        ([0, 10], ["a", "b"], ["rates", "numbers"]),
    ],
)
def test_bad_schedules_give_one_line_errors(thresholds, rates, words):
    with pytest.raises(ValueError) as err:
        BracketTax(thresholds, rates)
    msg = str(err.value)
    assert "\n" not in msg
    for word in words:
        assert word in msg


def test_bad_presets_give_one_line_errors():
    for name, kw, words in [
        ("progressive", {}, ["'progressive'", "us_federal", "free_market", "flat", "custom"]),
        ("flat", {"rte": 0.2}, ["rte", "rate"]),
        ("custom", {"rates": [0.1]}, ["custom", "thresholds"]),
        ("flat", {"rate": 2.0}, ["[0, 1]"]),
    ]:
        with pytest.raises(ValueError) as err:
            preset(name, **kw)
        assert "\n" not in str(err.value)
        assert all(w in str(err.value) for w in words), str(err.value)
    with pytest.raises(ValueError, match="one rate per cutoff"):
        bracket_tax(np.ones(3), CUT, [0.1, 0.2])


# --------------------------------------------------------------------------- Saez


def pareto(a, n, z_min=1.0, seed=0):
    return z_min * (1 + np.random.default_rng(seed).pareto(a, n))


def test_saez_terms_recover_the_pareto_tail():
    a, cuts = 3.0, np.array([0.0, 1.5, 2.0, 4.0])
    tail_a, big_g, n = saez_terms(pareto(a, 100_000), cuts)
    assert tail_a[0] == pytest.approx(1.0)
    assert np.allclose(tail_a[1:], a, rtol=0.03)
    assert np.allclose(big_g[1:], 1 / cuts[1:], rtol=0.03)  # G(m) = z_min / m
    assert n[0] == 100_000 and (np.diff(n) < 0).all()


@pytest.mark.parametrize("a", [2.5, 3.0, 4.0])
def test_saez_top_rate_approaches_the_closed_form(a):
    e, cuts = 0.5, np.array([0.0, 1.5, 2.0, 3.0])
    z = pareto(a, 200_000, seed=int(a * 10))
    revenue = saez_rates(z, cuts, e, welfare="revenue")
    assert np.allclose(revenue[1:], 1 / (1 + a * e), atol=0.02)  # tau = 1 / (1 + a e)
    g = 1 / cuts[1:]
    expected = (1 - g) / (1 - g + a * e)  # tau = (1 - G) / (1 - G + a e)
    assert np.allclose(saez_rates(z, cuts, e)[1:], expected, atol=0.02)
    assert (saez_rates(z, cuts, e, welfare="utilitarian") == 0).all()
    # the mechanism gives the same rates from its buffer
    saez = SaezTax(cuts, elasticity=e, buffer_size=z.size)
    saez.observe(z.reshape(-1, 4))
    assert np.allclose(saez.rates(), saez_rates(z, cuts, e))
    assert isinstance(saez.compute(), BracketTax)


def test_saez_empty_top_brackets_copy_the_rate_below():
    z = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    rates = saez_rates(z, [0, 2, 100, 200], 0.5, welfare="revenue")
    assert rates[2] == rates[3] == rates[1] and 0 < rates[1] < 1


def test_elasticity_by_ols_with_fallbacks():
    rng = np.random.default_rng(1)
    tau = rng.uniform(0, 0.8, 2000)
    z = np.exp(2.0 + 0.7 * np.log1p(-tau) + rng.normal(0, 0.05, tau.size))
    assert estimate_elasticity(z, tau) == pytest.approx(0.7, abs=0.02)
    assert estimate_elasticity(z[:5], tau[:5], default=0.4) == 0.4  # too few pairs
    assert estimate_elasticity(z, np.full(z.size, 0.3), default=0.4) == 0.4  # no variation
    assert estimate_elasticity(1 / z, tau, bounds=(0.1, 2.0)) == 0.1  # clipped positive
    with pytest.raises(ValueError, match="pair up"):
        estimate_elasticity(z, tau[:3])


def test_saez_mechanism_buffer_and_reset():
    saez = SaezTax(buffer_size=10, initial_rates=US_FEDERAL_RATES)
    assert np.allclose(saez.rates(), US_FEDERAL_RATES)  # nothing observed yet
    saez.observe(np.array([[5.0, 50.0, 300.0, 0.0]]))
    assert np.allclose(saez.marginal_rates, [0.10, 0.22, 0.35, 0.10])
    assert saez.elasticity() == saez.default_elasticity  # buffer too small for OLS
    for seed in range(5):
        saez.observe(pareto(3.0, 4, z_min=10.0, seed=seed))
    assert saez.incomes.size == 10 and saez.marginal_rates.size == 10
    rates = saez.rates()
    assert rates.shape == (7,) and ((rates >= 0) & (rates <= 1)).all()
    assert saez.schedule()["rate"].tolist() == rates.tolist()
    saez.reset()
    assert np.allclose(saez.rates(), rates)  # buffer kept across episodes
    saez.reset(clear=True)
    assert saez.incomes.size == 0 and np.allclose(saez.rates(), US_FEDERAL_RATES)
    for bad in [{"welfare": "rawls"}, {"elasticity": -1.0}, {"buffer_size": 0}]:
        with pytest.raises(ValueError) as err:
            SaezTax(**bad)
        assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- bad input, dtypes


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_numpy_fast_path_refuses_non_finite_incomes_and_coin(bad):
    income = np.array([[5.0, 50.0], [0.0, bad]])
    calls = {
        "bracket_tax": lambda: bracket_tax(income, CUT, US_FEDERAL_RATES),
        "bracket_amounts": lambda: bracket_amounts(income, CUT),
        "marginal_rate": lambda: marginal_rate(income, CUT, US_FEDERAL_RATES),
        "collect (income)": lambda: collect(np.ones((2, 2)), income, CUT, US_FEDERAL_RATES),
        "BracketTax.tax": lambda: preset("us_federal").tax(income),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text, name
        assert text == f"income must be finite numbers, got {bad} at index (1, 1)", name
    coin = np.array([[1.0, 2.0], [3.0, bad]])
    with pytest.raises(ValueError, match=r"^coin must be finite numbers, got .* at index \(1, 1\)"):
        collect(coin, np.ones((2, 2)), CUT, US_FEDERAL_RATES)


ARRAY_KINDS = ("numpy", torch.float32, torch.float64)
F32 = st.floats(-50, 1000, width=32)  # values float32 represents exactly


@st.composite
def mixed_inputs(draw):
    """A schedule whose numbers float32 represents exactly, and for income, rates and coin
    each either a numpy array or a torch tensor of either float dtype (at least one tensor)."""
    k = draw(st.integers(1, 7))
    gaps = draw(arrays(np.float64, k - 1, elements=st.floats(0.5, 100)))
    cutoffs = np.concatenate([[0.0], np.cumsum(gaps)]).astype(np.float32).astype(np.float64)
    batch, n = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    income = draw(arrays(np.float64, (batch, n), elements=F32))
    coin = draw(arrays(np.float64, (batch, n), elements=F32))
    shape = draw(st.sampled_from([(k,), (batch, k)]))
    rates = draw(arrays(np.float64, shape, elements=st.floats(0, 1, width=32)))
    kinds = draw(st.tuples(*[st.sampled_from(ARRAY_KINDS)] * 3).filter(
        lambda ks: any(k != "numpy" for k in ks)))
    return cutoffs, (income, rates, coin), kinds


def _as(x: np.ndarray, kind):
    return x if kind == "numpy" else torch.tensor(x, dtype=kind)


def _promoted(*xs) -> torch.dtype | None:
    """The dtype torch's promotion gives the tensors among ``xs`` (None: no tensor)."""
    dtypes = [x.dtype for x in xs if isinstance(x, torch.Tensor)]
    return None if not dtypes else torch.float64 if torch.float64 in dtypes else torch.float32


@settings(max_examples=150, deadline=None)
@given(mixed_inputs())
def test_torch_takes_mixed_float_dtypes_and_agrees_with_numpy(data):
    cutoffs, (income, rates, coin), kinds = data
    z, r, c = (_as(x, k) for x, k in zip((income, rates, coin), kinds, strict=True))
    if isinstance(r, torch.Tensor):
        r.requires_grad_(True)
    checks = [  # (numpy result, torch result, the arrays it was given)
        (bracket_tax(income, cutoffs, rates), bracket_tax(z, cutoffs, r), (z, r)),
        (marginal_rate(income, cutoffs, rates), marginal_rate(z, cutoffs, r), (z, r)),
        (bracket_amounts(income, cutoffs), bracket_amounts(z, cutoffs), (z,)),
        *[(want, got, (c, z, r)) for want, got in zip(
            collect(coin, income, cutoffs, rates), collect(c, z, cutoffs, r), strict=True)],
    ]
    for want, got, given_ in checks:
        dtype = _promoted(*given_)
        if dtype is None:  # all numpy: the numpy path
            assert isinstance(got, np.ndarray)
            continue
        assert isinstance(got, torch.Tensor) and got.dtype == dtype
        assert got.shape == want.shape
        tol = {"atol": 1e-9} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-3}
        assert np.allclose(got.detach().numpy(), want, **tol)
    if isinstance(r, torch.Tensor):  # still differentiable in the rates, whatever the dtypes
        (grad,) = torch.autograd.grad(bracket_tax(z, cutoffs, r).sum(), r)
        assert grad.dtype == r.dtype and torch.isfinite(grad).all()
