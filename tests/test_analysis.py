"""econsim.analysis: tidy tables of runs, the per-episode table, the data dictionary, and OLS
with standard errors clustered by seed (checked against statsmodels and the CR1 formula)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from econsim import analysis, cli, runner, scenario
from econsim.envs.gtb.tables import PERIOD_COLUMNS


def _tiny(name: str, **train) -> scenario.Scenario:
    data = scenario.load(name).resolved()
    data["algorithm"].update(batch=1, epochs=1, minibatches=2, hidden=[16])
    data["train"].update(iterations=1, log_every=1, eval_every=1, eval_episodes=2,
                         checkpoint_every=1, **train)
    return scenario.from_dict(data, name)


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


def test_regression_table_summary_and_csv(tmp_path):
    fit = analysis.regress("y ~ x", _synthetic(), cluster="seed")
    assert list(fit.table.columns) == ["term", "coef", "std_err", "t", "p", "ci_low", "ci_high"]
    assert list(fit.table.term) == ["Intercept", "x"]
    assert (fit.table.ci_low < fit.table.coef).all() and (fit.table.coef < fit.table.ci_high).all()
    text = fit.summary_text()
    assert "OLS Regression Results" in text and "clustered by seed (100 clusters)" in text
    back = pd.read_csv(fit.to_csv(tmp_path / "fit.csv"))
    pd.testing.assert_frame_equal(back, fit.table, check_exact=False)


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


# --------------------------------------------------------------------------- stored runs


@pytest.fixture(scope="module")
def gtb_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    ids = [runner.run(_tiny(name), seeds=[0, 1], progress=False, root=root).run_id
           for name in ("gtb_flat30", "gtb_us_federal")]
    return root, ids


def test_tidy_adds_metadata_and_rates(gtb_runs):
    root, ids = gtb_runs
    df = analysis.tidy(ids, "periods", root=root)
    assert list(df.columns[:7]) == ["run_id", "scenario", "env", "algorithm", "mechanism",
                                    "sweep", "seed"]
    assert set(PERIOD_COLUMNS) <= set(df.columns)
    # 2 runs x 2 seeds x 2 episodes x 10 periods x 4 agents
    assert len(df) == 2 * 2 * 2 * 10 * 4
    rates = df.groupby("mechanism")[["top_rate", "mean_rate"]].agg(["min", "max"])
    assert rates.loc["flat"].to_numpy() == pytest.approx([0.3] * 4)
    assert rates.loc["us_federal", "top_rate"].to_numpy() == pytest.approx([0.37, 0.37])
    assert rates.loc["us_federal", "mean_rate"].to_numpy() == pytest.approx(
        [np.mean([0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37])] * 2)
    pd.testing.assert_frame_equal(analysis.tidy(root=root), df)  # all runs = both runs
    ep = analysis.tidy(ids[:1], "episodes", root=root)
    assert set(ep.mechanism) == {"flat"} and "collective" in ep
    with pytest.raises(ValueError, match="not found"):
        analysis.tidy(["nope"], root=root)
    with pytest.raises(ValueError, match="table 'wages' is not allowed"):
        analysis.tidy(ids, "wages", root=root)


def test_episode_table_aggregates_periods(gtb_runs):
    root, ids = gtb_runs
    periods = analysis.tidy(ids, root=root)
    ep = analysis.episode_table(ids, root=root)
    assert len(ep) == 2 * 2 * 2 and ep.periods.eq(10).all()
    assert set(analysis.DATA_DICTIONARY["episodes"]) >= set(ep.columns)
    one = periods[(periods.run_id == ids[1]) & (periods.seed == 1) & (periods.episode == 1)]
    row = ep[(ep.run_id == ids[1]) & (ep.seed == 1) & (ep.episode == 1)].iloc[0]
    world = one[one.agent == 0].sort_values("period")
    assert row.welfare == pytest.approx(world.welfare.sum())
    assert row.productivity == pytest.approx(world.productivity.iloc[-1])
    assert row.final_welfare == pytest.approx(world.welfare.iloc[-1])
    assert row.tax_revenue == pytest.approx(one.tax.sum())
    assert row.mechanism == "us_federal" and row.top_rate == pytest.approx(0.37)
    # the runner's evaluation rows average the same episodes
    stored = analysis.tidy(ids, "episodes", root=root).query("phase == 'eval'")
    means = ep.groupby(["run_id", "seed"])[["productivity", "equality", "tax_revenue"]].mean()
    stored = stored.set_index(["run_id", "seed"])[means.columns].loc[means.index]
    np.testing.assert_allclose(means.to_numpy(), stored.to_numpy(), rtol=1e-9)
    # the same from an in-memory per-period table
    pd.testing.assert_frame_equal(analysis.episode_table(periods=periods), ep)


def test_regress_welfare_on_mechanism(gtb_runs, tmp_path, capsys):
    root, ids = gtb_runs
    fit = analysis.regress("welfare ~ C(mechanism)", analysis.episode_table(ids, root=root))
    assert list(fit.table.term) == ["Intercept", "C(mechanism)[T.us_federal]"]
    assert fit.n_clusters == 2 and fit.nobs == 8
    out = tmp_path / "fit.csv"
    assert cli.main(["--root", str(root), "regress", "welfare ~ C(mechanism)", "--runs", *ids,
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "OLS Regression Results" in text and "clustered by seed" in text
    np.testing.assert_allclose(pd.read_csv(out).coef, fit.table.coef)
    assert cli.main(["--root", str(root), "regress", "utility ~ skill", "--table", "periods",
                     "--runs", "gtb_*", "--cluster", "none"]) == 0
    assert "homoskedastic" in capsys.readouterr().out
    assert cli.main(["--root", str(root), "regress", "welfare ~ wage", "--runs", *ids]) == 2
    err = capsys.readouterr().err
    assert "unknown column 'wage'" in err and "top_rate" in err and err.count("\n") == 1


def test_data_dictionary_covers_the_tables(gtb_runs):
    root, ids = gtb_runs
    for table, df in (("periods", analysis.tidy(ids, root=root)),
                      ("episodes", analysis.episode_table(ids, root=root))):
        dd = analysis.data_dictionary(table, df.columns)
        assert list(dd.columns) == ["column", "unit", "meaning"]
        assert list(dd.column) == list(df.columns)
        assert (dd.unit != "").all() and (dd.meaning != "").all(), dd[dd.meaning == ""]
    full = analysis.data_dictionary("periods")
    assert full.set_index("column").loc["welfare", "unit"] == "coin"
    with pytest.raises(ValueError, match="allowed: periods, episodes"):
        analysis.data_dictionary("wages")


def test_non_gtb_runs_fall_back_to_evaluation_rows(tmp_path):
    data = scenario.load("ipd_lio").resolved()
    data["train"].update(iterations=2, log_every=1, eval_every=2, eval_episodes=2)
    run = runner.run(scenario.from_dict(data, "ipd"), seeds=[0, 1], progress=False,
                     root=tmp_path)
    ep = analysis.episode_table(root=tmp_path)
    assert len(ep) == 2 and set(ep.phase) == {"eval"} and set(ep.mechanism) == {"none"}
    with pytest.raises(ValueError, match="no periods table"):
        analysis.tidy([run.run_id], "periods", root=tmp_path)
