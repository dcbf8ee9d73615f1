"""econsim.uncertainty: seed-level means, t intervals and paired differences against
statsmodels and scipy on constructed tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import DescrStatsW

from econsim import uncertainty


def table() -> pd.DataFrame:
    """Two mechanisms x 4 seeds x 3 episodes; episodes vary within a seed."""
    rng = np.random.default_rng(7)
    rows = []
    for m, shift in (("base", 0.0), ("flat", 1.5)):
        for seed in range(4):
            level = 10 + 4 * seed + shift + rng.normal(0, 0.5)  # seeds differ a lot
            for ep in range(3):
                rows.append({"mechanism": m, "seed": seed, "episode": ep,
                             "welfare": level + rng.normal(0, 2.0), "equality": rng.random()})
    return pd.DataFrame(rows)


def test_intervals_are_statsmodels_t_intervals_of_the_seed_means():
    t = table()
    got = uncertainty.confidence(t, ["welfare", "equality"]).set_index(["mechanism", "outcome"])
    for m in ("base", "flat"):
        for c in ("welfare", "equality"):
            per_seed = t[t.mechanism == m].groupby("seed")[c].mean().to_numpy()
            low, high = DescrStatsW(per_seed).tconfint_mean(alpha=0.05)
            row = got.loc[(m, c)]
            assert row["mean"] == pytest.approx(per_seed.mean())
            assert (row.ci_low, row.ci_high) == pytest.approx((low, high))
            assert row.seeds == 4
    # the interval is over seeds, not episodes: 12 episodes would give a narrower one
    episodes = t[t.mechanism == "base"].welfare.to_numpy()
    naive = DescrStatsW(episodes).tconfint_mean()
    base = got.loc[("base", "welfare")]
    assert base.ci_high - base.ci_low > naive[1] - naive[0]


def test_paired_differences_are_paired_t_intervals():
    t = table()
    got = uncertainty.paired_differences(t, "welfare", baseline="base").iloc[0]
    a = t[t.mechanism == "flat"].groupby("seed").welfare.mean()
    b = t[t.mechanism == "base"].groupby("seed").welfare.mean()
    d = (a - b).to_numpy()
    low, high = DescrStatsW(d).tconfint_mean()
    assert got.mechanism == "flat" and got.baseline == "base" and got.seeds == 4
    assert got.difference == pytest.approx(d.mean())
    assert (got.ci_low, got.ci_high) == pytest.approx((low, high))
    test = stats.ttest_rel(a.to_numpy(), b.to_numpy())  # same standard error as ttest_rel
    se = (high - low) / 2 / stats.t.ppf(0.975, 3)
    assert test.statistic == pytest.approx(d.mean() / se)
    # pairing removes the seed-to-seed spread: narrower than the unpaired interval
    flat = uncertainty.confidence(t, "welfare").set_index("mechanism").loc["flat"]
    assert high - low < flat.ci_high - flat.ci_low


def test_one_seed_has_no_interval_and_only_shared_seeds_pair():
    t = table()
    one = uncertainty.confidence(t[t.seed == 0], "welfare")
    assert one.ci_low.isna().all() and (one.seeds == 1).all()
    partial = t[~((t.mechanism == "flat") & (t.seed == 3))]
    assert uncertainty.paired_differences(partial, "welfare", "base").seeds.iloc[0] == 3
    inf = t.assign(welfare=np.where(t.seed == 1, -np.inf, t.welfare))
    row = uncertainty.confidence(inf, "welfare").iloc[0]
    assert row["mean"] == -np.inf and np.isnan(row.ci_low)


@pytest.mark.parametrize("call, match", [
    (lambda t: uncertainty.confidence(t, "welfare_sum"), "no column.*'welfare_sum'"),
    (lambda t: uncertainty.confidence(t, "mechanism"), "not numeric"),
    (lambda t: uncertainty.paired_differences(t, "welfare", "us_federal"),
     "baseline 'us_federal' is not among the mechanism values \\(base, flat\\)"),
    (lambda t: uncertainty.confidence(t, "welfare", level=95), "level must be in"),
])
def test_bad_input_is_one_line(call, match):
    with pytest.raises(ValueError, match=match) as err:
        call(table())
    assert "\n" not in str(err.value)


def test_readable_puts_an_outcome_per_row_and_a_group_per_column():
    t = table()
    conf = uncertainty.confidence(t, ["welfare", "equality"])
    wide = uncertainty.readable(conf, digits=2)
    assert list(wide.columns) == ["outcome", "base", "flat"]
    assert list(wide.outcome) == ["welfare", "equality"]
    row = conf[(conf.mechanism == "flat") & (conf.outcome == "welfare")].iloc[0]
    assert wide.set_index("outcome").loc["welfare", "flat"] == (
        f"{row['mean']:,.2f} [{row.ci_low:,.2f}, {row.ci_high:,.2f}]")
    one = uncertainty.readable(uncertainty.confidence(t[t.seed == 0], "welfare"))
    assert "[" not in one.base.iloc[0]  # no interval with one seed: the mean alone
    diff = uncertainty.readable(uncertainty.paired_differences(t, "welfare", "base"),
                                value="difference")
    assert list(diff.columns) == ["outcome", "flat"]
    with pytest.raises(ValueError, match="no column.*'difference'"):
        uncertainty.readable(conf, value="difference")
