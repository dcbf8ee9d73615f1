"""econsim.analysis: tidy tables of runs (final evaluation of each seed by default), the
per-episode table, the data dictionary, and OLS with standard errors clustered by seed
(checked against statsmodels and the CR1 formula), the covariance stated, a warning with few
clusters and wild cluster bootstrap p-values (checked against refitting OLS per draw)."""

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from econsim import analysis, bootstrap, cli, dictionary, metrics, runner, scenario
from econsim.envs.gtb.tables import PERIOD_COLUMNS
from tests.reference import small


def _synthetic(n_groups: int = 100, per_group: int = 6, seed: int = 0,
               group_sd: float = 2.0) -> pd.DataFrame:
    """y = 1 + 2 x + 0.5 [m = b] - 1 [m = c] + u_g + e, with x and u correlated within
    groups (seed = group), so clustered standard errors differ from classical ones."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=g.size) + rng.normal(size=n_groups)[g]
    m = rng.choice(["a", "b", "c"], size=g.size)
    y = (1 + 2 * x + 0.5 * (m == "b") - 1.0 * (m == "c")
         + group_sd * rng.normal(size=n_groups)[g] + 0.3 * rng.normal(size=g.size))
    return pd.DataFrame({"y": y, "x": x, "mechanism": m, "seed": g})


def test_regress_recovers_coefficients_and_cluster_ses():
    df = _synthetic()
    fit = analysis.regress("y ~ x + C(mechanism)", df, cluster="seed")
    true = pd.Series({"Intercept": 1.0, "x": 2.0, "C(mechanism)[T.b]": 0.5,
                      "C(mechanism)[T.c]": -1.0})
    coef, se = fit.result.params[true.index], fit.result.bse[true.index]
    assert ((coef - true).abs() < 3 * se).all(), pd.DataFrame({"coef": coef, "se": se})
    quiet = analysis.regress("y ~ x + C(mechanism)", _synthetic(group_sd=0.0)).result.params
    np.testing.assert_allclose(quiet[true.index], true, atol=0.1)  # SE ~ 0.03
    # statsmodels' own clustered covariance, computed on a plain OLS fit
    plain = smf.ols("y ~ x + C(mechanism)", df).fit()
    own = plain.get_robustcov_results(cov_type="cluster", groups=df.seed.to_numpy(), use_t=True)
    np.testing.assert_allclose(fit.result.bse.to_numpy(), own.bse, rtol=1e-10)
    np.testing.assert_allclose(fit.result.pvalues.to_numpy(), own.pvalues, rtol=1e-10)
    # and by hand: CR1 sandwich, t tests with G - 1 degrees of freedom
    X, e = plain.model.exog, plain.resid.to_numpy()
    n, k = X.shape
    G = df.seed.nunique()
    bread = np.linalg.inv(X.T @ X)
    scores = np.stack([X[df.seed == s].T @ e[df.seed == s] for s in range(G)])
    V = G / (G - 1) * (n - 1) / (n - k) * bread @ (scores.T @ scores) @ bread
    np.testing.assert_allclose(fit.table.std_err, np.sqrt(np.diag(V)), rtol=1e-8)
    t = fit.table.coef / fit.table.std_err
    np.testing.assert_allclose(fit.table.p, 2 * stats.t.sf(np.abs(t), G - 1), rtol=1e-8)
    # clustering matters here: classical SEs are smaller
    classical = analysis.regress("y ~ x + C(mechanism)", df, cluster=None).result.bse
    assert classical["x"] < 0.8 * fit.result.bse["x"]


def test_regression_table_states_the_covariance(tmp_path):
    df = _synthetic(n_groups=12, per_group=5)  # G = 12 clusters, N = 60 rows, K = 2
    fit = analysis.regress("y ~ x", df, cluster="seed")
    assert list(fit.table.columns) == ["term", "coef", "std_err", "t", "p", "ci_low", "ci_high",
                                       "cov_type", "cluster", "n_clusters", "correction", "df",
                                       "nobs"]
    assert list(fit.table.term) == ["Intercept", "x"]
    assert (fit.table.ci_low < fit.table.coef).all() and (fit.table.coef < fit.table.ci_high).all()
    row = fit.table.iloc[0]
    assert (row.cov_type, row.cluster, row.n_clusters, row.df, row.nobs) == (
        "cluster-robust (CR1)", "seed", 12, 11, 60)
    assert row.correction == "G/(G-1) x (N-1)/(N-K)"
    assert fit.result.df_resid_inference == 11  # statsmodels tests with the same df
    text = fit.summary_text()
    assert "clustered by seed: 12 clusters" in text and "G - 1 = 11 degrees" in text
    assert "R-squared" in text and "Joint test that all 1 slopes are 0: F(1, 11)" in text
    back = pd.read_csv(fit.to_csv(tmp_path / "fit.csv"))
    pd.testing.assert_frame_equal(back, fit.table, check_exact=False)
    classical = analysis.regress("y ~ x", df, cluster=None).table.iloc[0]
    assert classical.cov_type.startswith("classical") and classical.df == 60 - 2
    assert classical.cluster == "" and np.isnan(classical.n_clusters)  # no cluster column


def test_few_clusters_warn_and_get_bootstrap_p_values():
    few = _synthetic(n_groups=4, per_group=10)
    with pytest.warns(analysis.FewClustersWarning, match="only 4 clusters"):
        fit = analysis.regress("y ~ x + C(mechanism)", few, cluster="seed")
    assert fit.n_clusters == 4 and fit.df == 3 and "p_boot" in fit.table
    assert fit.table.p_boot.between(0, 1).all() and fit.table.bootstrap.str.contains(
        "Webb weights").all()
    text = fit.summary_text()
    assert "Warning: only 4 clusters (seed)" in text and "p_boot: wild cluster bootstrap" in text
    # 3 slopes, but a covariance from 4 clusters has rank 3 at most: F(3, 3) is shown;
    # 2 clusters cannot carry a joint test of 3 slopes
    assert "F(3, 3)" in text
    two = _synthetic(n_groups=2, per_group=30)
    with pytest.warns(analysis.FewClustersWarning):
        text = analysis.regress("y ~ x + C(mechanism)", two).summary_text()
    assert "Joint test that all 3 slopes are 0: not available" in text and "F(" not in text
    with warnings.catch_warnings():
        warnings.simplefilter("error", analysis.FewClustersWarning)  # none with 12 clusters
        many = analysis.regress("y ~ x", _synthetic(n_groups=12))
    assert many.warnings == [] and many.p_boot is None
    with pytest.warns(analysis.FewClustersWarning):
        off = analysis.regress("y ~ x", few, bootstrap=False)
    assert off.p_boot is None and "bootstrap=True" in off.warnings[0]
    on = analysis.regress("y ~ x", _synthetic(n_groups=12), bootstrap=True, draws=199)
    assert on.p_boot is not None and "199 draws (seed 0)" in on.bootstrap
    with pytest.raises(ValueError, match="needs a cluster column"):
        analysis.regress("y ~ x", few, cluster=None, bootstrap=True)
    with pytest.raises(ValueError, match="weights 'normal' are not allowed"):
        analysis.regress("y ~ x", few, weights="normal")


def _refit_t(X, y, groups, j):
    """The CR1 cluster-robust t statistic of coefficient j, by refitting OLS."""
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    e = y - X @ beta
    A = np.linalg.inv(X.T @ X)
    G = groups.max() + 1
    meat = sum(np.outer(X[groups == g].T @ e[groups == g], X[groups == g].T @ e[groups == g])
               for g in range(G))
    n, k = X.shape
    V = G / (G - 1) * (n - 1) / (n - k) * A @ meat @ A
    return beta[j] / np.sqrt(V[j, j])


def test_wild_cluster_bootstrap_matches_refitting_per_draw():
    """WCR by brute force: impose the null, rebuild y for each Rademacher sign vector
    (all 2^5), refit OLS, and compare every t* and the p-value with econsim.bootstrap."""
    df = _synthetic(n_groups=5, per_group=7, seed=3)
    with pytest.warns(analysis.FewClustersWarning):
        fit = analysis.regress("y ~ x + C(mechanism)", df, weights="rademacher")
    X, y = fit.result.model.exog, fit.result.model.endog
    groups = df.seed.to_numpy()
    v = bootstrap.draws(5, 999, "rademacher")
    assert v.enumerated and len(v.v) == 32 and "full enumeration" in fit.bootstrap
    for j, term in enumerate(fit.result.params.index):
        Xr = np.delete(X, j, axis=1)
        fitted = Xr @ np.linalg.lstsq(Xr, y, rcond=None)[0]
        u = y - fitted
        t_star = np.array([_refit_t(X, fitted + w[groups] * u, groups, j) for w in v.v])
        t = _refit_t(X, y, groups, j)
        p, fast_t_star, fast_t = bootstrap.wcr_pvalue(X, y, groups, j, v.v)
        np.testing.assert_allclose(fast_t_star, t_star, rtol=1e-8)
        assert fast_t == pytest.approx(fit.result.tvalues[term], rel=1e-10) == t
        assert p == pytest.approx(np.mean(np.abs(t_star) >= abs(t) * (1 - 1e-9)))
        assert fit.table.set_index("term").p_boot[term] == pytest.approx(p)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 5.0))
def test_two_clusters_never_give_a_small_bootstrap_p_value(seed, effect):
    """With 2 clusters the data cannot reject anything at 5 %: whatever the data, p_boot is
    at least 1/6 (Webb: 6 of the 36 weight vectors reproduce |t|), while the analytic
    cluster-robust p-value can be tiny."""
    rng = np.random.default_rng(seed)
    g = np.repeat([0, 1], 40)
    d = np.tile([0, 1], 40)
    y = effect * d + 3 * rng.normal(size=2)[g] + rng.normal(size=80)
    df = pd.DataFrame({"y": y, "d": d, "seed": g})
    with pytest.warns(analysis.FewClustersWarning):
        fit = analysis.regress("y ~ d", df)
    assert (fit.table.p_boot >= 1 / 6 - 1e-12).all(), fit.table


def test_bootstrap_p_values_are_sane():
    """A null effect is not significant in most samples; a strong one with many clusters
    is. Under the null with 12 clusters p_boot rejects at 10 % about as often as it should."""
    def sample(seed: int, effect: float, n_groups: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        g = np.repeat(np.arange(n_groups), 8)
        d = rng.integers(0, 2, g.size)
        y = effect * d + rng.normal(size=n_groups)[g] + rng.normal(size=g.size)
        return pd.DataFrame({"y": y, "d": d, "seed": g})

    strong = analysis.regress("y ~ d", sample(0, 1.0, 30), bootstrap=True)
    assert strong.table.set_index("term").p_boot["d"] < 0.01
    p_null = [analysis.regress("y ~ d", sample(s, 0.0, 12), bootstrap=True)
              .table.set_index("term").p_boot["d"] for s in range(60)]
    assert 0.35 < np.mean(p_null) < 0.65 and np.mean(np.array(p_null) < 0.10) < 0.2


def test_collinear_regressors_are_refused_in_one_line():
    """A rate that is constant within each mechanism cannot be told apart from the
    mechanism dummies: statsmodels would print arbitrary coefficients and p-values."""
    df = _synthetic(n_groups=12)
    df["top_rate"] = df.mechanism.map({"a": 0.1, "b": 0.3, "c": 0.37})
    with pytest.raises(ValueError, match=r"top_rate is a linear combination of the other "
                                         r"terms") as err:
        analysis.regress("y ~ C(mechanism) + top_rate", df)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"I\(2 \* x\) is a linear combination"):
        analysis.regress("y ~ x + I(2 * x)", df, cluster=None)
    assert analysis.regress("y ~ top_rate", df).nobs == len(df)


def test_integer_columns_do_not_wrap_around_and_scales_are_named():
    """int64 arithmetic in I(...) wrapped around silently: seed x 1e18 for seeds 10 and 11
    gave negative numbers and a wrong coefficient. Columns too different in scale for least
    squares were called "a linear combination of the other terms"."""
    df = _synthetic(n_groups=12)  # seed: int64 0..11
    assert df.seed.dtype == np.int64
    big = analysis.regress("y ~ I(seed * 1000000 * 1000000 * 1000000) - 1", df, cluster=None)
    plain = analysis.regress("y ~ seed - 1", df, cluster=None)
    assert big.result.params.iloc[0] * 1e18 == pytest.approx(plain.result.params.iloc[0])
    assert big.result.model.exog.max() == pytest.approx(11e18)
    with pytest.raises(ValueError, match=r"the terms differ too much in scale for least "
                                         r"squares \(I\(seed \* 1000000 \* 1000000 \* "
                                         r"1000000\) is .* times Intercept\): rescale one"):
        analysis.regress("y ~ I(seed * 1000000 * 1000000 * 1000000)", df)
    # C(seed) and a reference level keep the integer labels
    fit = analysis.regress("y ~ x + C(seed) + seed:x", df, cluster=None, bootstrap=False)
    assert "C(seed)[T.1]" in fit.result.params and "seed:x" in fit.result.params
    assert "C(seed)[T.0]" in analysis.regress("y ~ x + C(seed)", df, cluster=None,
                                              reference={"seed": 5}).result.params


def test_reference_level_of_a_category():
    df = _synthetic(n_groups=12)
    default = analysis.regress("y ~ C(mechanism)", df).result.params
    fit = analysis.regress("y ~ C(mechanism)", df, reference={"mechanism": "c"})
    assert list(fit.table.term) == ["Intercept", "C(mechanism)[T.a]", "C(mechanism)[T.b]"]
    assert fit.references == {"C(mechanism)": "c"}
    assert fit.result.params["C(mechanism)[T.a]"] == pytest.approx(
        -default["C(mechanism)[T.c]"])
    assert "Reference level of C(mechanism): c" in fit.summary_text()
    same = analysis.regress("y ~ C(mechanism, Treatment(reference='c'))", df)
    np.testing.assert_allclose(same.result.params.to_numpy(), fit.result.params.to_numpy())
    assert list(same.references.values()) == ["c"]
    seeds = analysis.regress("y ~ x + C(seed)", df, cluster=None, reference={"seed": 5})
    assert "C(seed)[T.0]" in seeds.result.params and "C(seed)[T.5]" not in seeds.result.params
    with pytest.raises(ValueError, match=r"reference level 'z' is not a value of 'mechanism' "
                                         r"\(its values: a, b, c\)"):
        analysis.regress("y ~ C(mechanism)", df, reference={"mechanism": "z"})


def test_regress_drops_nan_rows_and_keeps_groups_aligned():
    df = _synthetic(seed=1)
    df.loc[[3, 40, 41, 100], "y"] = np.nan
    df.loc[[7, 200], "x"] = np.nan
    df.loc[[9, 300], "seed"] = np.nan  # no cluster label: dropped too
    df = df.sample(frac=1, random_state=0)  # shuffled, non-default index
    df.index = df.index * 7 + 1000
    fit = analysis.regress("y ~ x + C(mechanism)", df, cluster="seed")
    clean = df.dropna(subset=["y", "x", "seed"]).reset_index(drop=True)
    ref = smf.ols("y ~ x + C(mechanism)", clean).fit(
        cov_type="cluster", cov_kwds={"groups": clean.seed.astype(int).to_numpy()}, use_t=True)
    assert fit.nobs == len(clean) == len(df) - 8
    np.testing.assert_allclose(fit.result.params, ref.params, rtol=1e-10)
    np.testing.assert_allclose(fit.result.bse, ref.bse, rtol=1e-10)


@pytest.mark.parametrize("formula, cluster, match", [
    ("y ~ nope", "seed", "unknown column 'nope'"),
    ("y ~ C(mechanism", "seed", "formula"),
    ("y x", "seed", "must look like"),
    ("y ~ x", "cluster_col", "cluster column 'cluster_col' not found"),
    ("y ~ x", "one", "1 group"),
])
def test_regress_bad_input_is_one_line(formula, cluster, match):
    df = _synthetic().assign(one=1)
    with pytest.raises(ValueError, match=match) as err:
        analysis.regress(formula, df, cluster=cluster)
    msg = str(err.value)
    assert "\n" not in msg and "columns: y, x, mechanism, seed" in msg


def _one_line_no_runtime_warning(formula: str, data: pd.DataFrame, match: str,
                                 **kwargs) -> str:
    """The ValueError message of a regression that must fail in one line without a numpy
    RuntimeWarning (which the CLI and the app would print on stderr)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=match) as err:
            analysis.regress(formula, data, **kwargs)
    assert "\n" not in str(err.value)
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert runtime == [], runtime
    return str(err.value)


def test_no_more_rows_than_parameters_is_one_line():
    """N == K: the fit is exact and CR1's (N-1)/(N-K) divided by zero inside statsmodels
    (ZeroDivisionError); N < K said the terms were linear combinations."""
    one_per_level = pd.DataFrame({"y": [1.0, 2.5, 2.0, 4.0, 3.5, 6.0],
                                  "m": list("abcdef"), "seed": range(6)})
    for cluster in ("seed", None):
        msg = _one_line_no_runtime_warning("y ~ C(m)", one_per_level, r"6 rows used for 6 "
                                           r"parameters: with no more rows than parameters",
                                           cluster=cluster, bootstrap=False)
        assert "y ~ C(m)" in msg
    _one_line_no_runtime_warning("y ~ C(m) + seed", one_per_level, "6 rows used for 7 "
                                 "parameters", cluster=None)
    # one row more than parameters is a fit (with 5 residual degrees of freedom here)
    seven = _synthetic(n_groups=12, per_group=1).head(7)
    assert analysis.regress("y ~ x", seven, cluster=None).result.df_resid == 5


@pytest.mark.parametrize(("formula", "term", "rows"), [
    ("y ~ exp(x * 1000)", "exp(x * 1000)", None),
    ("y ~ I(x / 0)", "I(x / 0)", None),
    ("y ~ x + log(seed)", "log(seed)", 6),  # seed 0: log(0) = -inf
    ("y ~ sqrt(x)", "sqrt(x)", None),  # sqrt of a negative number: undefined, not dropped
    ("log(seed) ~ x", "log(seed)", 6),  # the outcome too
])
def test_non_finite_values_are_named_in_one_line(formula, term, rows):
    """They were reported as "is a linear combination of the other terms" (or, in the
    outcome, fitted into NaN coefficients), with numpy RuntimeWarnings on stderr."""
    df = _synthetic(n_groups=12)
    msg = _one_line_no_runtime_warning(formula, df, "is not finite")
    assert f": {term} is not finite in " in msg
    if rows is not None:
        assert f"not finite in {rows} of the {len(df)} rows" in msg


def test_values_too_large_for_least_squares_are_one_line():
    df = _synthetic(n_groups=12)
    df["x"] = df.x.abs().clip(upper=1.5) + 1  # exp(200 x) up to 1.4e217: finite, X'X is not
    _one_line_no_runtime_warning("y ~ exp(x * 200)", df, r"exp\(x \* 200\) reaches 1.4e\+217 "
                                 r"in absolute value \(at most 1e\+100.*rescale it")


def test_a_standard_error_of_rounding_noise_gives_no_test():
    """Two identical runs (same scenario and seeds: identical numbers) compared by
    C(run_id): the coefficient is 4e-16 with a standard error of 1e-23, which statsmodels
    turned into t = 3e7, "p = 2e-8" (or a NaN with a numpy warning when the rounding made
    the variance negative). An exact fit likewise."""
    twins = pd.DataFrame({"collective": np.tile([1.3, 2.7, 0.4, 3.1], 3),
                          "run_id": np.repeat(["a", "b", "c"], 4), "seed": np.tile(range(4), 3)})
    twins.loc[twins.run_id == "c", "collective"] += [0.5, -0.2, 0.1, 0.3]  # c differs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = analysis.regress("collective ~ C(run_id)", twins)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert fit.untestable == ["C(run_id)[T.b]"]
    row = fit.table.set_index("term").loc["C(run_id)[T.b]"]
    assert abs(row.coef) < 1e-12 and row.std_err == 0
    assert row[["t", "p", "ci_low", "ci_high", "p_boot"]].isna().all()
    c = fit.table.set_index("term").loc["C(run_id)[T.c]"]
    assert c.std_err > 0 and 0 < c.p < 1 and 0 < c.p_boot <= 1
    text = fit.summary_text()
    assert "Warning: the standard error of C(run_id)[T.b] is zero up to rounding" in text
    assert "Joint test that all 2 slopes are 0: not available (the standard error of " \
           "C(run_id)[T.b] is zero up to rounding)" in text
    exact = _synthetic(n_groups=12).assign(y=lambda d: 2 * d.x + 1)
    assert analysis.regress("y ~ x", exact, cluster=None).untestable == ["Intercept", "x"]
    assert analysis.regress("y ~ x", _synthetic(n_groups=12)).untestable == []
    _one_line_no_runtime_warning("y ~ x", exact.assign(y=5.0), r"the outcome y is 5 in all "
                                 r"72 rows used: there is nothing to explain")


def test_a_formula_without_regressors_is_one_line():
    for formula in ("y ~ 0", "y ~ -1", "y ~ 1 - 1"):
        _one_line_no_runtime_warning(formula, _synthetic(n_groups=12), r"no regressors .* "
                                     r"'y ~ 1' fits the mean alone")
    assert list(analysis.regress("y ~ 1", _synthetic(n_groups=12)).table.term) == ["Intercept"]


def test_bootstrap_draws_are_bounded():
    df = _synthetic(n_groups=12)
    for draws in (10 ** 11, 100_001, 98, 2.5, True):
        with pytest.raises(ValueError, match=r"bootstrap draws: .* is not allowed \(an integer "
                                             r"from 99 to 100,000\)"):
            analysis.regress("y ~ x", df, bootstrap=True, draws=draws)
    many = _synthetic(n_groups=200, per_group=2)
    with pytest.raises(ValueError, match=r"100,000 draws x 200 clusters is more than "
                                         r"10,000,000 weights: use at most 50,000 draws"):
        analysis.regress("y ~ x", many, bootstrap=True, draws=100_000)
    assert analysis.regress("y ~ x", many, bootstrap=True, draws=50_000).p_boot is not None


# --------------------------------------------------------------------------- stored runs


@pytest.fixture(scope="module")
def gtb_runs(tmp_path_factory):
    """flat 30 % and US-federal, 2 seeds, evaluated at iterations 1 and 2 (2 episodes each)."""
    root = tmp_path_factory.mktemp("runs")
    ids = [runner.run(small(name, 2, eval_every=1, checkpoint_every=1, ppo=True),
                      seeds=[0, 1], progress=False, root=root).run_id
           for name in ("gtb_flat30", "gtb_us_federal")]
    return root, ids


def test_tidy_adds_metadata_and_rates(gtb_runs):
    root, ids = gtb_runs
    df = analysis.tidy(ids, "periods", root=root)
    assert list(df.columns[:9]) == ["run_id", "scenario", "env", "algorithm", "mechanism",
                                    "mechanism_name", "sweep", "mechanism_rate", "seed"]
    assert set(PERIOD_COLUMNS) <= set(df.columns)
    # 2 runs x 2 seeds x 2 episodes x 10 periods x 4 agents, of the final evaluation
    assert len(df) == 2 * 2 * 2 * 10 * 4 and set(df.iteration) == {2}
    assert set(df.mechanism) == {"flat(rate=0.3)", "us_federal"}
    assert set(df.mechanism_name) == {"flat", "us_federal"}
    flat = df[df.mechanism_name == "flat"]
    assert (flat.mechanism_rate == 0.3).all() and df[df.mechanism_name != "flat"
                                                      ].mechanism_rate.isna().all()
    rates = df.groupby("mechanism")[["top_rate", "mean_rate"]].agg(["min", "max"])
    assert rates.loc["flat(rate=0.3)"].to_numpy() == pytest.approx([0.3] * 4)
    assert rates.loc["us_federal", "top_rate"].to_numpy() == pytest.approx([0.37, 0.37])
    assert rates.loc["us_federal", "mean_rate"].to_numpy() == pytest.approx(
        [np.mean([0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37])] * 2)
    pd.testing.assert_frame_equal(analysis.tidy(root=root), df)  # all runs = both runs
    assert len(analysis.tidy(ids, root=root, evaluations="all")) == 2 * len(df)
    ep = analysis.tidy(ids[:1], "episodes", root=root)
    assert set(ep.mechanism) == {"flat(rate=0.3)"} and "collective" in ep
    assert set(ep.phase) == {"eval"} and set(ep.iteration) == {2} and len(ep) == 2
    every = analysis.tidy(ids[:1], "episodes", root=root, evaluations="all")
    assert set(every.phase) == {"train", "eval"}  # "all" keeps the training windows too
    with pytest.raises(ValueError, match="not found"):
        analysis.tidy(["nope"], root=root)
    with pytest.raises(ValueError, match="table 'wages' is not allowed"):
        analysis.tidy(ids, "wages", root=root)


def test_episode_table_uses_the_final_evaluation_of_each_seed(gtb_runs):
    """Issue 9: pooling every evaluation is pseudo-replication. The default is the final
    evaluation of each seed; a given iteration or all of them (with `iteration`) on request."""
    root, ids = gtb_runs
    ep = analysis.episode_table(ids, root=root)
    assert len(ep) == 2 * 2 * 2 and set(ep.iteration) == {2} and ep.periods.eq(10).all()
    every = analysis.episode_table(ids, root=root, evaluations="all")
    assert len(every) == 2 * len(ep) and set(every.iteration) == {1, 2}
    first = analysis.episode_table(ids, root=root, evaluations=1)
    assert set(first.iteration) == {1} and len(first) == len(ep)
    assert not np.allclose(first.welfare_sum.to_numpy(), ep.welfare_sum.to_numpy())
    pd.testing.assert_frame_equal(analysis.episode_table(ids, root=root, evaluations="2"), ep)
    with pytest.raises(ValueError, match=r"has no evaluation at iteration 5 \(its "
                                         r"evaluations: 1, 2\)"):
        analysis.episode_table(ids, root=root, evaluations=5)
    with pytest.raises(ValueError, match=r"evaluations: 'last' is not allowed \(allowed: "
                                         r"final, all, or an iteration"):
        analysis.episode_table(ids, root=root, evaluations="last")
    # the same from an in-memory per-period table
    periods = analysis.tidy(ids, root=root, evaluations="all")
    pd.testing.assert_frame_equal(analysis.episode_table(periods=periods), ep)


def test_episode_table_aggregates_periods(gtb_runs):
    root, ids = gtb_runs
    periods = analysis.tidy(ids, root=root)
    ep = analysis.episode_table(ids, root=root)
    assert set(analysis.DATA_DICTIONARY["episodes"]) | {"mechanism_rate"} >= set(ep.columns)
    one = periods[(periods.run_id == ids[1]) & (periods.seed == 1) & (periods.episode == 1)]
    row = ep[(ep.run_id == ids[1]) & (ep.seed == 1) & (ep.episode == 1)].iloc[0]
    world = one[one.agent == 0].sort_values("period")
    assert row.welfare_sum == pytest.approx(world.welfare_sum.sum())
    assert row.productivity == pytest.approx(world.productivity.iloc[-1])
    assert row.welfare_final == pytest.approx(world.welfare.iloc[-1])
    assert row.tax_revenue == pytest.approx(one.tax.sum())
    assert row.mechanism == "us_federal" and row.top_rate == pytest.approx(0.37)
    assert row.welfare_sum > 50 * row.welfare_final  # a sum over the episode's 100 steps
    end = one[one.period == one.period.max()].sort_values("agent")
    assert row.utilitarian == pytest.approx(end.utility.sum())
    assert row.rawlsian == pytest.approx(end.utility.min())
    assert row.atkinson == pytest.approx(float(metrics.atkinson(end.coin.clip(lower=0), 1.0)))
    assert row.nash == pytest.approx(float(metrics.nash(end.coin)))
    # the runner's evaluation rows average the same episodes: welfare_sum is one measure
    stored = analysis.tidy(ids, "episodes", root=root)
    cols = ["productivity", "equality", "tax_revenue", "welfare_sum", "welfare_final"]
    means = ep.groupby(["run_id", "seed"])[cols].mean()
    stored = stored.set_index(["run_id", "seed"])[means.columns].loc[means.index]
    np.testing.assert_allclose(means.to_numpy(), stored.to_numpy(), rtol=1e-9)


def test_regress_welfare_on_mechanism(gtb_runs, tmp_path, capsys):
    root, ids = gtb_runs
    with pytest.warns(analysis.FewClustersWarning, match="only 2 clusters"):
        fit = analysis.regress("welfare_sum ~ C(mechanism)",
                               analysis.episode_table(ids, root=root))
    assert list(fit.table.term) == ["Intercept", "C(mechanism)[T.us_federal]"]
    assert fit.n_clusters == 2 and fit.nobs == 8 and fit.table.p_boot.ge(1 / 6).all()
    out = tmp_path / "fit.csv"
    assert cli.main(["--root", str(root), "regress", "welfare_sum ~ C(mechanism)", "--runs",
                     *ids, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "final evaluation of each seed: 8 rows (8 used)" in captured.out
    assert "clustered by seed: 2 clusters" in captured.out and "p_boot" in captured.out
    assert "warning: only 2 clusters" in captured.err
    written = pd.read_csv(out)
    np.testing.assert_allclose(written.coef, fit.table.coef)
    assert (written.n_clusters == 2).all() and (written.df == 1).all()
    assert cli.main(["--root", str(root), "regress", "welfare_sum ~ C(mechanism)", "--runs",
                     *ids, "--evaluations", "all", "--reference", "mechanism=us_federal",
                     "--bootstrap", "off"]) == 0
    text = capsys.readouterr().out
    # the label of the rows is the app's (analysis.evaluation_label), not a copy of it
    assert f"{analysis.evaluation_label('all')}: 16 rows" in text
    assert "C(mechanism)[T.flat(rate=0.3)]" in text
    assert "p_boot" not in text
    assert cli.main(["--root", str(root), "regress", "utility ~ skill", "--table", "periods",
                     "--runs", "gtb_*", "--cluster", "none"]) == 0
    assert "classical (homoskedastic" in capsys.readouterr().out
    assert cli.main(["--root", str(root), "regress", "welfare ~ wage", "--runs", *ids]) == 2
    err = capsys.readouterr().err
    assert "unknown column 'welfare'" in err and "welfare_sum" in err and err.count("\n") == 1
    assert cli.main(["--root", str(root), "regress", "welfare_sum ~ top_rate", "--reference",
                     "mechanism"]) == 2
    assert "--reference: 'mechanism' is not allowed" in capsys.readouterr().err


def test_readme_regression_in_a_folder_with_other_games(gtb_runs, tmp_path, capsys):
    """The README's `regress "welfare_sum ~ C(mechanism)"` failed as soon as the runs folder
    held a non-GTB run: its rows have no welfare_sum and are dropped, but their mechanism
    `none` still entered the design ("C(mechanism)[T.none] is a linear combination")."""
    root, ids = gtb_runs
    mixed = tmp_path / "runs"
    for run_id in ids:
        shutil.copytree(root / run_id, mixed / run_id)
    data = scenario.load("ipd_pg").resolved()
    data["train"].update(iterations=1, log_every=1, eval_every=1, eval_episodes=1)
    runner.run(scenario.from_dict(data, "ipd"), seeds=[0, 1], progress=False, root=mixed)
    ep = analysis.episode_table(root=mixed)
    assert set(ep.mechanism) == {"flat(rate=0.3)", "us_federal", "none"}
    assert ep[ep.mechanism == "none"].welfare_sum.isna().all()
    gtb_only = analysis.episode_table(ids, root=root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", analysis.FewClustersWarning)
        want = analysis.regress("welfare_sum ~ C(mechanism)", gtb_only, bootstrap=False)
        for table in (ep, ep.assign(mechanism=pd.Categorical(ep.mechanism))):
            fit = analysis.regress("welfare_sum ~ C(mechanism)", table, bootstrap=False)
            assert list(fit.table.term) == ["Intercept", "C(mechanism)[T.us_federal]"]
            assert fit.nobs == 8 and fit.references == {"C(mechanism)": "flat(rate=0.3)"}
            np.testing.assert_allclose(fit.result.params, want.result.params, rtol=1e-12)
        ref = analysis.regress("welfare_sum ~ C(mechanism)", ep, bootstrap=False,
                               reference={"mechanism": "us_federal"})
    assert list(ref.table.term) == ["Intercept", "C(mechanism)[T.flat(rate=0.3)]"]
    capsys.readouterr()
    assert cli.main(["--root", str(mixed), "regress", "welfare_sum ~ C(mechanism)"]) == 0
    out = capsys.readouterr().out
    assert "episodes table of 3 run(s)" in out and "(8 used)" in out
    assert "C(mechanism)[T.us_federal]" in out and "T.none" not in out
    # a transform that is not finite: one line on stderr, no numpy warning
    assert cli.main(["--root", str(mixed), "regress", "welfare_sum ~ log(seed)"]) == 2
    err = capsys.readouterr().err
    assert "log(seed) is not finite in 4 of the 8 rows" in err and err.count("\n") == 1
    assert cli.main(["--root", str(mixed), "regress", "collective ~ 1", "--draws",
                     "100000000000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("econsim: error: bootstrap draws: 100000000000 is not allowed")
    assert err.count("\n") == 1


@pytest.mark.parametrize(("name", "text", "match"), [
    ("scenario.toml", "a = " + "[" * 3000 + "]" * 3000, "scenario.toml: arrays or tables nest"),
    ("scenario.toml", "name = ", r"scenario.toml: not valid TOML: Invalid value"),
    ("sweep.json", "[" * 100_000 + "]" * 100_000, "sweep.json nests too deep"),
    ("sweep.json", '{"params": [1]}', "sweep.json is not a sweep's"),
    ("sweep.json", "{", r"sweep.json cannot be read \(Expecting property name"),
])
def test_a_corrupt_run_file_is_one_line(gtb_runs, tmp_path, capsys, name, text, match):
    """The probe: a run whose scenario.toml is deeply nested made `econsim regress` print a
    2,007-line RecursionError."""
    root, ids = gtb_runs
    shutil.copytree(root / ids[0], tmp_path / ids[0])
    (tmp_path / ids[0] / name).write_text(text)
    with pytest.raises(ValueError, match=rf"^run '{ids[0]}': {match}") as err:
        analysis.tidy(ids[:1], "episodes", tmp_path)
    assert "\n" not in str(err.value)
    assert cli.main(["--root", str(tmp_path), "regress", "collective ~ 1", "--runs",
                     ids[0]]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_regress_out_that_cannot_be_written_is_one_line(gtb_runs, tmp_path, capsys):
    """`regress --out afile/x.csv` or `/proc/x.csv` printed a traceback after the results."""
    root, ids = gtb_runs
    afile = tmp_path / "afile"
    afile.write_text("")
    for out, match in [(afile / "x.csv", "the folder .*afile does not exist"),
                       (tmp_path, "it is a folder"),
                       (tmp_path / ("x" * 300 + ".csv"), "File name too long")]:
        argv = ["--root", str(root), "regress", "collective ~ 1", "--runs", *ids, "--out",
                str(out), "--bootstrap", "off"]
        assert cli.main(argv) == 2
        captured = capsys.readouterr()
        assert re.match(rf"econsim: error: cannot write .*{match}", captured.err), captured.err
        assert captured.err.count("\n") == 1
    fit = analysis.regress("y ~ x", _synthetic(n_groups=12))
    with pytest.raises(ValueError, match="cannot write /proc/x.csv: "):
        fit.to_csv("/proc/x.csv")


def test_data_dictionary_covers_the_tables(gtb_runs):
    root, ids = gtb_runs
    for table, df in (("periods", analysis.tidy(ids, root=root)),
                      ("episodes", analysis.episode_table(ids, root=root)),
                      ("run_episodes", analysis.tidy(ids, "episodes", root=root,
                                                     evaluations="all")),
                      ("run_agents", analysis.tidy(ids, "agents", root=root))):
        dd = analysis.data_dictionary(table, df.columns)
        assert list(dd.columns) == ["column", "unit", "meaning"]
        assert list(dd.column) == list(df.columns)
        assert (dd.unit != "").all() and (dd.meaning != "").all(), dd[dd.meaning == ""]
    full = analysis.data_dictionary("periods").set_index("column")
    assert full.loc["welfare", "unit"] == "coin x share"
    assert full.loc["welfare_sum", "unit"] == "coin x share x steps"
    assert full.loc["skill", "unit"] == "coin/house"
    assert set(PERIOD_COLUMNS) <= set(full.index)  # the game's columns, described once
    assert "old name of welfare_sum" in dictionary.describe("run_episodes", "social_welfare")[1]
    with pytest.raises(ValueError, match="allowed: periods, episodes, steps, world"):
        analysis.data_dictionary("wages")


def test_readme_data_dictionary_is_generated_from_the_dictionary(monkeypatch):
    """The README's "One vocabulary" table cannot drift from econsim.dictionary: it is the
    output of `python -m econsim.dictionary --readme README.md`, with every unit looked up
    in the tables (the README once gave mechanism_name no unit while the tables say name)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = dictionary.readme_table()
    assert block in readme, "README's data dictionary is stale: run python -m " \
                            "econsim.dictionary --readme README.md"
    vocab = dictionary.vocabulary()
    for row in vocab.itertuples():
        for name in re.findall(r"`([^`]+)`", row.columns):
            col = name.replace("<parameter>", "rate")  # a pattern: every table has it
            units = {dictionary.describe(t, col)[0] for t in dictionary.TABLES
                     if col in dictionary.TABLES[t] or col != name}
            assert units == {row.unit}, (col, units, row.unit)
    assert vocab.set_index("columns").loc["`mechanism_name`", "unit"] == "name"
    # a unit changed in one table only is an error, not a silent README
    monkeypatch.setitem(dictionary.STEPS, "skill", ("coin", "build pay"))
    with pytest.raises(ValueError, match="column 'skill': units differ between tables"):
        dictionary.readme_table()


def test_update_readme_rewrites_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{dictionary.README_BEGIN}\nold\n{dictionary.README_END}\ntail\n")
    assert dictionary.update_readme(readme) is True
    assert readme.read_text() == f"# x\n\n{dictionary.readme_table()}\ntail\n"
    assert dictionary.update_readme(readme) is False
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no data-dictionary block"):
        dictionary.update_readme(readme)


def test_old_column_names_are_renamed_in_one_place(gtb_runs, tmp_path):
    """A run written before `welfare_sum` / `welfare_final` were named reads as today's,
    through dictionary.current_names (analysis.tidy, analysis.load, the app's pages), and
    the rule is written nowhere else; "final evaluation" and its label likewise."""
    root, ids = gtb_runs
    old = tmp_path / "runs"
    shutil.copytree(root / ids[0], old / ids[0])
    for table in ("episodes", "periods"):
        path = old / ids[0] / f"{table}.parquet"
        pd.read_parquet(path).rename(columns={v: k for k, v in dictionary.RENAMED.items()}
                                     ).to_parquet(path)
    raw = pd.read_parquet(old / ids[0] / "episodes.parquet")
    assert {"social_welfare", "final_welfare"} <= set(raw) and "welfare_sum" not in raw
    loaded = analysis.load(ids[0], "episodes", old)
    assert {"welfare_sum", "welfare_final"} <= set(loaded) and "social_welfare" not in loaded
    assert list(loaded.columns) == [dictionary.RENAMED.get(c, c) for c in raw.columns]
    assert "welfare_sum" in analysis.tidy(ids[:1], "episodes", old)
    np.testing.assert_allclose(analysis.episode_table(root=old).welfare_sum,
                               analysis.episode_table(ids[:1], root=root).welfare_sum)
    both = raw.assign(welfare_sum=1.0, welfare_final=1.0)  # both there: nothing renamed
    assert list(dictionary.current_names(both).columns) == list(both.columns)
    # one copy of each rule in the sources
    src = Path(analysis.__file__).parent
    files = {p.relative_to(src).as_posix(): p.read_text() for p in src.rglob("*.py")}
    assert [f for f, text in files.items() if "RENAMED" in text] == ["dictionary.py"]
    assert [f for f, text in files.items() if "def evaluation_label" in text] == ["analysis.py"]
    runs_page = files["app_pages/runs.py"]
    assert "select_evaluations" in runs_page and '["iteration"].transform' not in runs_page
    assert "analysis.evaluation_label(" in files["cli.py"]


@pytest.mark.parametrize("value", ["²", "٣", "1.5", "-1", "9" * 13, "", "last"])
def test_evaluations_are_ascii_iteration_numbers(value, tmp_path, capsys):
    """"²".isdigit() is True but int("²") fails: isdecimal, ASCII only, and a bounded length."""
    with pytest.raises(ValueError, match=r"^evaluations: .* is not allowed \(allowed: final, "
                                         r"all, or an iteration number"):
        analysis.parse_evaluations(value)
    assert cli.main(["--root", str(tmp_path), "regress", "y ~ x", "--evaluations",
                     value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("econsim: error: evaluations: ") and err.count("\n") == 1
    assert analysis.parse_evaluations(" 200 ") == 200 == analysis.parse_evaluations(200)


def test_mechanism_labels_carry_parameters():
    assert dictionary.mechanism_label({"name": "flat", "rate": 0.2}) == "flat(rate=0.2)"
    assert dictionary.mechanism_label({"name": "us_federal"}) == "us_federal"
    assert dictionary.mechanism_label({"name": "custom", "thresholds": [0, 10.0],
                                       "rates": [0.1, 0.25]}) == (
        "custom(rates=[0.1, 0.25], thresholds=[0, 10])")
    assert dictionary.mechanism_columns({"name": "custom", "rates": [0.1], "thresholds": [0]}
                                        ) == {"mechanism": "custom(rates=[0.1], thresholds=[0])",
                                              "mechanism_name": "custom",
                                              "mechanism_rates": "[0.1]",
                                              "mechanism_thresholds": "[0]"}
    assert analysis.mechanism_of({"algorithm": {"name": "metagrad-tax"}}) == "metagrad"
    assert analysis.mechanism_of({"algorithm": {"name": "ppo"}}) == "none"


def test_non_gtb_runs_fall_back_to_evaluation_rows(tmp_path):
    data = scenario.load("ipd_lio").resolved()
    data["train"].update(iterations=2, log_every=1, eval_every=1, eval_episodes=2)
    run = runner.run(scenario.from_dict(data, "ipd"), seeds=[0, 1], progress=False,
                     root=tmp_path)
    ep = analysis.episode_table(root=tmp_path)
    assert len(ep) == 2 and set(ep.phase) == {"eval"} and set(ep.mechanism) == {"none"}
    assert set(ep.iteration) == {2}
    assert len(analysis.episode_table(root=tmp_path, evaluations="all")) == 4
    with pytest.raises(ValueError, match="no periods table"):
        analysis.tidy([run.run_id], "periods", root=tmp_path)
