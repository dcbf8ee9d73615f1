"""econsim.distribution: Lorenz curves, tax incidence and the trade-off frontier, against
hand-worked tables and econsim.metrics."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from econsim import distribution as D
from econsim import metrics, whatif


def periods_of(pre, tax, transfer, skill, mechanism="m", rate=0.1):
    """One episode, one period per agent."""
    n = len(pre)
    return pd.DataFrame({"mechanism": mechanism, "seed": 0, "episode": 0, "period": 0,
                         "agent": range(n), "skill": skill, "pre_tax_income": pre,
                         "tax": tax, "transfer": transfer,
                         "post_tax_income": np.add(np.subtract(pre, tax), transfer),
                         "marginal_rate": rate})


def test_lorenz_curve_and_gini_of_a_hand_worked_distribution():
    per = periods_of([0.0, 10.0, 30.0, 60.0], [0, 1, 6, 18], [6.25] * 4, [10, 12, 20, 30])
    lz = D.lorenz(per)
    pre = lz[lz.income == "pre_tax"]
    np.testing.assert_allclose(pre.people, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(pre.share, [0, 0, 0.1, 0.4, 1.0])
    # the Gini shown is econsim.metrics' (the equality columns'); by hand: sum |xi - xj| =
    # 2 (10 + 30 + 60 + 20 + 50 + 30) = 400, / (2 n sum x) = 400 / 800, x n / (n - 1)
    assert pre.gini.iloc[0] == pytest.approx(0.5 * 4 / 3)
    assert pre.gini.iloc[0] == pytest.approx(float(metrics.gini(np.array([0.0, 10, 30, 60]))))
    post = lz[lz.income == "post_tax"]
    assert post.gini.iloc[0] < pre.gini.iloc[0]  # redistribution flattens it


def test_incidence_by_decile_and_skill_is_ratios_of_sums():
    per = periods_of([0.0, 10.0, 30.0, 60.0], [0, 1, 6, 18], [6.25] * 4, [10, 12, 20, 30])
    dec = D.incidence(per, group="decile", bins=2)  # two halves
    low, high = dec.iloc[0], dec.iloc[1]
    assert (low.group, high.group) == (1, 2) and (dec.agents == 2).all()
    assert low.average_rate == pytest.approx(1 / 10) and high.average_rate == pytest.approx(24 / 90)
    assert low.net_rate == pytest.approx((1 - 12.5) / 10)  # a net recipient
    assert low.pre_tax == 5.0
    sk = D.incidence(per, group="skill", bins=2)  # the skills seen, 10-30: two bands
    assert list(sk.group) == ["10.0-20.0", "20.0-30.0"]
    assert sk.agents.tolist() == [2, 2]
    assert sk.average_rate.iloc[1] == pytest.approx(24 / 90)
    with pytest.raises(ValueError, match="group 'age' is not allowed"):
        D.incidence(per, group="age")


def test_tradeoff_marks_the_undominated_points():
    ep = pd.DataFrame({"mechanism": ["a", "a", "b", "c"], "seed": [0, 1, 0, 0],
                       "productivity": [100.0, 80, 90, 50], "equality": [0.5, 0.9, 0.6, 0.4]})
    t = D.tradeoff(ep).set_index(["mechanism", "seed"])
    assert t.frontier.to_dict() == {("a", 0): True, ("a", 1): True, ("b", 0): True,
                                    ("c", 0): False}
    assert t.welfare[("a", 1)] == pytest.approx(72.0)
    iso = D.iso_welfare([50.0], np.array([25.0, 50.0, 100.0]))
    assert iso.equality.tolist() == [1.0, 0.5]  # 50 / 25 = 2 > 1 is not drawn
    curves = D.iso_welfare_of(D.tradeoff(ep), shares=(0.5, 1.0), grid=5)
    best = float(D.tradeoff(ep).welfare.max())
    assert sorted(curves.welfare.unique()) == pytest.approx([best / 2, best])
    assert (curves.equality <= 1).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1000), min_size=2, max_size=30))
def test_lorenz_curves_are_convex_below_the_diagonal(x):
    people, share, gini = D._lorenz_points(np.array(x))
    assert (share <= people + 1e-9).all() and share[0] == 0 and share[-1] == pytest.approx(1)
    assert (np.diff(share) >= -1e-12).all() and (np.diff(share, 2) >= -1e-9).all()
    assert -1e-9 <= gini <= 1 + 1e-9
    if sum(x) > 0:  # twice the area between the curve and the diagonal, x n / (n - 1)
        n = len(x)
        area = 1.0 - np.sum((share[1:] + share[:-1]) / n)
        assert gini == pytest.approx(area * n / (n - 1), abs=1e-9)


def test_tables_of_a_what_if():
    res = whatif.compare(["free_market", {"name": "flat", "rate": 0.5}], "gtb_free_market",
                         episodes=1, seeds=[0, 1])
    inc = D.incomes(res.periods)
    assert len(inc) == 2 * 2 * 4
    np.testing.assert_allclose(inc.groupby("mechanism").tax.sum()["free_market"], 0.0)
    lz = D.lorenz(res.periods)
    assert set(lz.mechanism) == {"free_market", "flat(rate=0.5)"}
    dec = D.incidence(res.periods)
    flat = dec[dec.mechanism == "flat(rate=0.5)"].dropna(subset=["average_rate"])
    assert np.allclose(flat.average_rate, 0.5, atol=0.02)  # a flat tax: 50% in every decile
    t = D.tradeoff(res.episodes)
    assert len(t) == 4 and t.frontier.any()
