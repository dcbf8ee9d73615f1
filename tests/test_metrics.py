"""Social metrics (Diss §6.3.1, SPEC §6): hand-worked values, properties, shapes, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from econsim import metrics as M
from econsim.metrics import equality, gini, productivity, social_welfare, welfare_over_time

TOL = 1e-9


def test_equal_coin_is_perfect_equality():
    for n in (2, 3, 4, 10, 50):
        assert equality(np.full(n, 7.5)) == pytest.approx(1.0)
        assert gini(np.full(n, 7.5)) == pytest.approx(0.0)


def test_one_agent_has_everything_is_zero_equality():
    for n in (2, 3, 5, 29, 30, 100):
        coin = np.zeros(n)
        coin[n // 2] = 12.0
        assert gini(coin) == pytest.approx(1.0)
        assert equality(coin) == pytest.approx(0.0, abs=TOL)
        assert social_welfare(coin) == pytest.approx(0.0, abs=1e-8)


def test_two_agents_by_hand():
    # x = (1, 3): sum_ij |x_i - x_j| = 2 * 2 = 4; 2 n sum x = 2 * 2 * 4 = 16 -> 0.25;
    # times n / (n - 1) = 2 -> Gini 0.5, equality 0.5, productivity 4, welfare 2.
    coin = np.array([1.0, 3.0])
    assert productivity(coin) == 4.0
    assert gini(coin) == pytest.approx(0.5)
    assert equality(coin) == pytest.approx(0.5)
    assert social_welfare(coin) == pytest.approx(2.0)


def test_three_agents_by_hand():
    # x = (0, 2, 4): pairwise |diffs| 2, 4, 2 each twice -> 16; 2 n sum = 2 * 3 * 6 = 36;
    # 16 / 36 * 3 / 2 = 2 / 3.
    assert gini([0.0, 2.0, 4.0]) == pytest.approx(2 / 3)
    assert equality([4.0, 0.0, 2.0]) == pytest.approx(1 / 3)


def test_zero_coin_and_single_agent():
    assert gini(np.zeros(4)) == 0.0 and equality(np.zeros(4)) == 1.0
    assert social_welfare(np.zeros(4)) == 0.0
    assert gini([5.0]) == 0.0 and productivity([5.0]) == 5.0


def test_batch_first_shapes():
    coin = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 5.0]])  # [B=3, N=2]
    for f in (productivity, gini, equality, social_welfare):
        assert f(coin).shape == (3,)
    np.testing.assert_allclose(productivity(coin), [4.0, 4.0, 5.0])
    np.testing.assert_allclose(equality(coin), [0.5, 1.0, 0.0], atol=TOL)
    np.testing.assert_allclose(social_welfare(coin), [2.0, 4.0, 0.0], atol=TOL)
    assert equality(np.ones((2, 5, 4))).shape == (2, 5)
    assert np.ndim(equality([1.0, 2.0])) == 0
    # each world's value equals the value computed for that world alone
    for b in range(3):
        assert equality(coin)[b] == pytest.approx(float(equality(coin[b])))


def test_welfare_over_time_sums_prod_times_eq():
    coin_t = np.array([[[1.0, 3.0]], [[2.0, 2.0]], [[0.0, 5.0]]])  # [T=3, B=1, N=2]
    assert welfare_over_time(coin_t).shape == (1,)
    assert welfare_over_time(coin_t)[0] == pytest.approx(2.0 + 4.0 + 0.0)
    assert welfare_over_time(coin_t[:, 0]) == pytest.approx(6.0)  # [T, N] -> scalar


@pytest.mark.parametrize("f", [productivity, gini, equality, social_welfare])
def test_nan_and_rank_errors(f):
    with pytest.raises(ValueError, match="NaN"):
        f(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="rank"):
        f(np.float64(3.0))
    with pytest.raises(ValueError, match="no agents"):
        f(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="infinite"):
        f([1.0, np.inf])


def test_welfare_over_time_needs_time_axis():
    with pytest.raises(ValueError, match="coin_t must have rank >= 2"):
        welfare_over_time(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        welfare_over_time(np.array([[1.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="numeric"):
        productivity(["a", "b"])


def test_error_messages_are_one_line():
    with pytest.raises(ValueError) as err:
        equality(np.array([[np.nan, 1.0]]))
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------- properties
# non-negative coin; tiny positive values are left out so scaling never underflows to 0
amounts = st.one_of(st.just(0.0), st.floats(1e-6, 1e6))
coin_arrays = st.integers(1, 12).flatmap(
    lambda n: arrays(np.float64, st.tuples(st.integers(1, 4), st.just(n)), elements=amounts))


@settings(max_examples=200, deadline=None)
@given(coin_arrays)
def test_equality_in_unit_interval(coin):
    eq = equality(coin)
    assert eq.shape == coin.shape[:1]
    assert ((eq >= -TOL) & (eq <= 1 + TOL)).all()


@settings(max_examples=200, deadline=None)
@given(coin_arrays, st.randoms(use_true_random=False))
def test_invariant_to_permuting_agents(coin, rnd):
    perm = list(range(coin.shape[-1]))
    rnd.shuffle(perm)
    np.testing.assert_allclose(equality(coin[:, perm]), equality(coin), atol=1e-9)
    np.testing.assert_allclose(productivity(coin[:, perm]), productivity(coin), rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(coin_arrays, st.floats(1e-3, 1e3))
def test_equality_invariant_to_scaling(coin, c):
    np.testing.assert_allclose(equality(c * coin), equality(coin), atol=1e-9)
    np.testing.assert_allclose(social_welfare(c * coin), c * social_welfare(coin),
                               rtol=1e-9, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(coin_arrays, st.data())
def test_productivity_additive(a, data):
    b = data.draw(arrays(np.float64, a.shape, elements=amounts))
    np.testing.assert_allclose(productivity(a + b), productivity(a) + productivity(b),
                               rtol=1e-12, atol=1e-6)
    # additive over agents too: splitting the population sums the parts
    k = a.shape[-1] // 2
    if k > 0:
        np.testing.assert_allclose(productivity(a), productivity(a[:, :k])
                                   + productivity(a[:, k:]), rtol=1e-12)


# ------------------------------------------------------- standard social welfare functions
def test_welfare_functions_against_hand_worked_values():
    x = np.array([1.0, 4.0])  # incomes
    u = np.array([-2.0, 3.0, 5.0])  # utilities
    assert M.utilitarian(u) == 6.0 and M.utilitarian_mean(u) == 2.0
    assert M.rawlsian(u) == -2.0
    assert M.nash(x) == pytest.approx(np.log(4.0))
    assert M.nash([0.0, 3.0]) == -np.inf
    # e = 1: geometric mean 2, mean 2.5, A = 1 - 2 / 2.5 = 0.2
    assert M.atkinson_equivalent(x, 1.0) == pytest.approx(2.0)
    assert M.atkinson(x, 1.0) == pytest.approx(0.2)
    # e = 0.5: EDE = (mean sqrt x)^2 = 1.5^2 = 2.25, A = 1 - 2.25 / 2.5 = 0.1
    assert M.atkinson_equivalent(x, 0.5) == pytest.approx(2.25)
    assert M.atkinson(x, 0.5) == pytest.approx(0.1)
    # e = 2: EDE = harmonic mean = 1 / mean(1, 1/4) = 1.6, A = 1 - 1.6 / 2.5 = 0.36
    assert M.atkinson_equivalent(x, 2.0) == pytest.approx(1.6)
    assert M.atkinson(x, 2.0) == pytest.approx(0.36)
    assert M.atkinson(x, 0.0) == 0.0  # no aversion
    assert M.atkinson([0.0, 4.0], 1.0) == 1.0 and M.atkinson([0.0, 4.0], 3.0) == 1.0
    assert M.atkinson([0.0, 0.0], 2.0) == 0.0
    batch = M.welfare_functions([[1.0, 4.0], [2.0, 2.0]], [[1.0, 2.0], [0.0, 0.0]], 1.0)
    np.testing.assert_allclose(batch["atkinson"], [0.2, 0.0], atol=1e-12)
    np.testing.assert_allclose(batch["utilitarian"], [3.0, 0.0])
    np.testing.assert_allclose(batch["rawlsian"], [1.0, 0.0])


def test_welfare_functions_refuse_bad_input_with_one_line():
    for call, match in ((lambda: M.atkinson([1.0, -1.0]), "incomes >= 0"),
                        (lambda: M.atkinson([1.0, 2.0], -0.5), "epsilon"),
                        (lambda: M.atkinson([1.0, 2.0], float("nan")), "epsilon"),
                        (lambda: M.utilitarian([1.0, float("nan")]), "NaN"),
                        (lambda: M.rawlsian([]), "no agents")):
        with pytest.raises(ValueError, match=match) as err:
            call()
        assert "\n" not in str(err.value)


incomes = arrays(np.float64, st.integers(2, 8), elements=st.floats(0.01, 1e4))


@settings(max_examples=200, deadline=None)
@given(incomes, st.floats(0.0, 5.0))
def test_atkinson_is_an_index_below_the_mean_and_scale_free(x, e):
    a, ede = M.atkinson(x, e), M.atkinson_equivalent(x, e)
    assert -1e-9 <= a <= 1 + 1e-9
    assert ede <= x.mean() * (1 + 1e-9)  # EDE never exceeds the mean
    assert M.atkinson(3.0 * x, e) == pytest.approx(a, abs=1e-9)  # scale invariance
    assert M.atkinson(np.full_like(x, x.mean()), e) == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(incomes, st.floats(0.0, 2.0), st.floats(2.0, 5.0))
def test_more_inequality_aversion_never_lowers_the_atkinson_index(x, low, high):
    assert M.atkinson(x, low) <= M.atkinson(x, high) + 1e-9
