"""The GTB economy end to end: tax mechanisms in scenarios, PPO runs, per-period tables,
the store, exports, and the Mesa face under a mechanism."""

import numpy as np
import pandas as pd
import pytest

from econsim import cli, runner, scenario, store
from econsim.envs.gtb.tables import PERIOD_COLUMNS
from econsim.errors import ScenarioError
from econsim.model import EconModel
from learners.brains import SharedPolicyBrain, team_brains
from mechanisms.tax import US_FEDERAL_RATES
from tests.reference import small


@pytest.fixture(scope="module")
def us_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    result = runner.run(small("gtb_us_federal", 2, ppo=True), seeds=[0, 1], progress=False,
                        root=root)
    return result, root


def test_mechanism_field_is_validated():
    data = scenario.load("gtb_us_federal").resolved()
    data["mechanism"] = {"name": "robin_hood"}
    with pytest.raises(ScenarioError, match=r"mechanism.name: 'robin_hood' is not allowed"):
        scenario.from_dict(data, "x.toml")
    data["mechanism"] = {"name": "flat", "rate": 1.5}
    with pytest.raises(ScenarioError, match="mechanism") as err:
        scenario.from_dict(data, "x.toml")
    assert "\n" not in str(err.value)
    er = scenario.load("er21_lio").resolved()
    er["mechanism"] = {"name": "us_federal"}
    with pytest.raises(ScenarioError, match="does not take a tax mechanism"):
        scenario.from_dict(er, "x.toml")


def test_run_writes_period_table(us_run):
    result, root = us_run
    periods = pd.read_parquet(result.path / "periods.parquet")
    assert set(PERIOD_COLUMNS) <= set(periods.columns)
    # 2 seeds x 2 episodes x 10 periods x 4 agents, one evaluation
    assert len(periods) == 2 * 2 * 10 * 4
    assert set(periods.seed) == {0, 1}
    # US-federal schedule in force, and every period's budget balances
    assert np.allclose(periods[[f"rate_{j}" for j in range(7)]], US_FEDERAL_RATES)
    sums = periods.groupby(["seed", "episode", "period"])[["tax", "transfer"]].sum()
    assert np.allclose(sums.tax, sums.transfer)
    assert (periods.tax >= 0).all() and (periods.tax <= periods.pre_tax_income.clip(0) + 1e-9).all()
    assert np.allclose(periods.post_tax_income,
                       periods.pre_tax_income - periods.tax + periods.transfer)
    ep = result.episodes.query("phase == 'eval'")
    assert {"productivity", "equality", "welfare_sum", "welfare_final",
            "tax_revenue"} <= set(ep.columns)
    ag = result.agents
    assert {"coin", "labor", "skill", "tax_paid", "transfer", "houses"} <= set(ag.columns)


def test_store_and_export_include_periods(us_run, tmp_path):
    result, root = us_run
    df = store.query("select seed, sum(tax) as tax from periods group by seed", root=root)
    assert len(df) == 2
    assert cli.main(["--root", str(root), "export", result.run_id, "--format", "csv",
                     "--out", str(tmp_path)]) == 0
    back = pd.read_csv(tmp_path / f"{result.run_id}-periods.csv")
    assert len(back) == 160 and "post_tax_income" in back
    # the data dictionary is written next to the tables and describes every column
    dd = pd.read_csv(tmp_path / f"{result.run_id}-dictionary.csv", keep_default_na=False)
    assert set(dd.table) == {"episodes", "agents", "periods"}
    assert list(dd[dd.table == "periods"].column) == list(back.columns)
    assert (dd.unit != "").all() and (dd.meaning != "").all(), dd[dd.meaning == ""]
    units = dd.set_index(["table", "column"]).unit
    assert units["periods", "welfare"] == "coin x share"
    assert units["episodes", "welfare_sum"] == "coin x share x steps"
    # Stata: the same tables, each variable labelled with its meaning and unit
    out = tmp_path / "dta"
    assert cli.main(["--root", str(root), "export", result.run_id, "--format", "dta",
                     "--out", str(out)]) == 0
    with pd.io.stata.StataReader(out / f"{result.run_id}-periods.dta") as reader:
        dta, labels = reader.read(), reader.variable_labels()
    assert len(dta) == 160 and np.allclose(dta.post_tax_income, back.post_tax_income)
    assert labels["welfare"].endswith("[coin x share]")
    with pd.io.stata.StataReader(out / f"{result.run_id}-episodes.dta") as reader:
        assert reader.variable_labels()["welfare_sum"].endswith("[coin x share x steps]")


def test_econ_model_under_a_mechanism_collects_metrics():
    model = EconModel("gtb_flat30", seed=3)
    steps = model.run_episodes(1)
    assert steps.step.max() == 100
    mv = model.datacollector.get_model_vars_dataframe()
    assert {"productivity", "equality", "welfare", "tax_revenue", "tax_rates"} <= set(mv)
    assert mv.tax_rates.iloc[-1] == [0.3] * 7
    av = model.datacollector.get_agent_vars_dataframe()
    assert {"coin", "tax", "transfer", "income", "labor", "skill"} <= set(av.columns)
    per_step = av.groupby(level=0)[["tax", "transfer"]].sum()
    assert np.allclose(per_step.tax, per_step.transfer)
    assert (mv.tax_revenue > 0).any() or (av.income <= 0).all()
    # agents stand on the 15x15 Mesa grid at the kernel's position
    p = model.players[0]
    assert p.cell.coordinate == (p.row, p.col)


def test_econ_model_mechanism_argument_and_errors():
    model = EconModel("gtb_free_market", seed=0, mechanism="us_federal")
    model.step()
    assert model.tax_rates == pytest.approx(list(US_FEDERAL_RATES))
    with pytest.raises(ValueError, match="has no taxes"):
        EconModel("er21_lio", mechanism="us_federal")
    with pytest.raises(ValueError, match="mechanism.name"):
        EconModel("gtb_free_market", mechanism="robin_hood")


def test_trained_ppo_agents_act_in_mesa(us_run):
    result, root = us_run
    model = EconModel.from_run(result.run_id, seed=1, root=root)
    assert all(isinstance(p.brain, SharedPolicyBrain) for p in model.players)
    for _ in range(15):
        model.step()
        legal = model.game.action_mask(model.state)  # sanity: the mask is computable
        assert legal.shape[-1] == model.game.action_space.n
    assert model.t == 15
    with pytest.raises(ValueError, match="out of range"):
        team_brains(result.trainer, replica=5)


def _welfare_benchmark():
    """``benchmarks/gtb_welfare.py`` as a module."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gtb_welfare.py"
    spec = importlib.util.spec_from_file_location("gtb_welfare", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_welfare_benchmark_on_a_tiny_budget(tmp_path, capsys):
    mod = _welfare_benchmark()
    df = mod.main(["--iterations", "1", "--seeds", "0", "--root", str(tmp_path), "--quiet",
                   "--only", "gtb_free_market", "gtb_us_federal"])
    assert set(df.scenario) == {"gtb_free_market", "gtb_us_federal"}
    assert (df.welfare_sum > 0).all() and df.builders.between(0, 1).all()
    out = capsys.readouterr().out
    assert "Tax schedule" in out and str(US_FEDERAL_RATES[-1]) in out


def test_welfare_benchmark_counts_builders_per_agent_episode():
    import pandas as pd

    mod = _welfare_benchmark()
    # seed 0: agent 0 builds in episode 0 (second period), nobody else; seed 1: both agents
    # in episode 0, agent 1 in episode 1
    rows = [(seed, ep, agent, period, houses) for seed, ep, agent, period, houses in [
        (0, 0, 0, 0, 0), (0, 0, 0, 1, 1), (0, 0, 1, 0, 0), (0, 0, 1, 1, 0),
        (0, 1, 0, 0, 0), (0, 1, 1, 0, 0),
        (1, 0, 0, 0, 2), (1, 0, 1, 0, 1), (1, 1, 0, 0, 0), (1, 1, 1, 0, 1)]]
    periods = pd.DataFrame(rows, columns=["seed", "episode", "agent", "period", "houses_built"])
    assert mod.builders(periods, "seed").to_dict() == {0: 0.25, 1: 0.75}


def test_welfare_benchmark_tests_episodes_and_writes_docs(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    mod = _welfare_benchmark()
    docs = tmp_path / "docs"
    df = mod.main(["--iterations", "2", "--seeds", "0,1", "--root", str(tmp_path / "runs"),
                   "--quiet", "--only", "gtb_metagrad", "gtb_us_federal",
                   "--test-episodes", "3", "--docs", str(docs)])
    batch = {n: scenario.load(n).algorithm["batch"] for n in ("gtb_metagrad", "gtb_us_federal")}
    # 2 iterations x batch, summed from the run's log
    assert (df.episodes == 3).all()
    assert (df.episodes_trained == 2 * df.scenario.map(batch)).all()
    tests = pd.read_csv(docs / "gtb_welfare_2it_tests.csv")
    assert list(tests.against) == ["gtb_us_federal"]
    a, b = (df[df.scenario == n].welfare_sum.to_numpy() for n in ("gtb_metagrad",
                                                                  "gtb_us_federal"))
    se = np.sqrt(a.var(ddof=1) / 2 + b.var(ddof=1) / 2)
    assert tests["diff"].item() == pytest.approx(a.mean() - b.mean())
    assert tests.std_err.item() == pytest.approx(se)
    assert tests.t.item() == pytest.approx((a.mean() - b.mean()) / se)
    assert 0 < tests.p.item() < 1
    rates = pd.read_csv(docs / "gtb_welfare_2it_schedules.csv").set_index("scenario")
    assert rates.loc["gtb_us_federal", "rate_6"] == pytest.approx(US_FEDERAL_RATES[-1])
    learned = rates.loc["gtb_metagrad"].to_numpy()
    assert ((learned > 0) & (learned < 1)).all() and not np.allclose(learned, US_FEDERAL_RATES)
    curve = pd.read_csv(docs / "gtb_welfare_2it_curves.csv")
    assert set(curve.seed) == {0, 1}
    assert (curve.episodes == curve.iteration * curve.scenario.map(batch)).all()
    assert curve.loc[curve.scenario == "gtb_metagrad", "designer_return"].notna().all()
    assert (docs / "gtb_welfare_2it.png").stat().st_size > 0
    assert "MetaGrad's social welfare against the others" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["gtb_metagrad", "gtb_dualrl"])
def test_learned_planner_comes_with_a_trained_run(name, tmp_path):
    result = runner.run(small(name, 2, ppo=True), seeds=[0], progress=False, root=tmp_path)
    model = EconModel.from_run(result.run_id, root=tmp_path)
    assert model.mechanism is not None  # the run's planner sets the rates in Mesa
    model.run_episodes(1)
    rates = model.datacollector.get_model_vars_dataframe().tax_rates.iloc[-1]
    assert len(rates) == 7 and all(0 <= r <= 1 for r in rates)


def test_cli_runs_and_exports_metagrad_and_us_federal(tmp_path):
    root = tmp_path / "runs"
    for name in ("gtb_metagrad", "gtb_us_federal"):
        assert cli.main(["--root", str(root), "run", name, "--seeds", "0", "--iterations", "1",
                         "--quiet"]) == 0
    tables = []
    for run in sorted(root.iterdir()):
        out = tmp_path / "csv" / run.name
        assert cli.main(["--root", str(root), "export", run.name, "--format", "csv",
                         "--out", str(out)]) == 0
        tables.append(pd.read_csv(out / f"{run.name}-periods.csv"))
    both = pd.concat(tables)
    assert set(both.scenario) == {"gtb_metagrad", "gtb_us_federal"}
    welfare = both.groupby("scenario").welfare.mean()
    assert (welfare > 0).all()
