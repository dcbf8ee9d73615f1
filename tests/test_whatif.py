"""econsim.whatif: what-ifs in the Mesa model under tax mechanisms, side by side on the same
seeds, as tidy tables; progress and cancel; trained brains; one-line errors."""

import numpy as np
import pandas as pd
import pytest

from econsim import runner, scenario, whatif
from econsim.envs.gtb.tables import PERIOD_COLUMNS
from econsim.model import EconModel
from mechanisms.tax import US_FEDERAL_CUTOFFS, US_FEDERAL_RATES
from tests.reference import small


@pytest.fixture(scope="module")
def pair():
    return whatif.compare(["us_federal", {"name": "flat", "rate": 0.3}], "gtb_free_market",
                          episodes=1, seeds=[0, 1])


def test_compare_gives_tidy_tables_per_mechanism(pair):
    assert pair.mechanisms == ["us_federal", "flat(rate=0.3)"] and pair.seeds == [0, 1]
    ep = pair.episodes
    assert len(ep) == 2 * 2 and list(ep.columns[:5]) == [
        "mechanism", "mechanism_name", "mechanism_rate", "seed", "episode"]
    assert list(ep.mechanism_name) == ["us_federal"] * 2 + ["flat"] * 2
    assert ep.mechanism_rate.isna().sum() == 2 and (ep.mechanism_rate.dropna() == 0.3).all()
    assert {"welfare_sum", "welfare_final", "productivity", "equality", "tax_revenue",
            "houses_built", "trade_volume", "top_rate"} <= set(ep.columns)
    assert not {"welfare", "social_welfare", "final_welfare"} & set(ep.columns)
    per = pair.periods  # 2 mechanisms x 2 seeds x 1 episode x 10 periods x 4 agents
    assert len(per) == 160 and set(PERIOD_COLUMNS) <= set(per.columns)
    assert len(pair.steps) == 2 * 2 * 100 * 4 and len(pair.world) == 2 * 2 * 100
    # the schedules in force are the mechanisms'
    fed = per[per.mechanism == "us_federal"]
    assert np.allclose(fed[[f"rate_{j}" for j in range(7)]].iloc[0], US_FEDERAL_RATES)
    assert np.allclose(per.loc[per.mechanism == "flat(rate=0.3)", "rate_6"], 0.3)
    sched = pair.schedules.set_index(["mechanism", "bracket"])["rate"]
    assert np.allclose(sched["us_federal"], US_FEDERAL_RATES)
    assert np.allclose(pair.schedules.lower.unique(), US_FEDERAL_CUTOFFS)
    # budget balance per period, and the period table agrees with the per-step reporters
    sums = per.groupby(["mechanism", "seed", "period"])[["tax", "transfer"]].sum()
    assert np.allclose(sums.tax, sums.transfer)
    by_run = ["mechanism", "seed", "episode"]
    tax = per.groupby(by_run).tax.sum()
    assert np.allclose(tax, pair.steps.groupby(by_run).tax.sum())
    assert np.allclose(ep.set_index(by_run).tax_revenue.sort_index(), tax)
    # welfare_sum: productivity x equality summed over the episode's 100 steps, from the
    # per-step world table, and the same as the periods' welfare_sum added up
    world = pair.world.groupby(by_run).welfare.sum()
    assert np.allclose(ep.set_index(by_run).welfare_sum.sort_index(), world)
    periods = per.groupby([*by_run, "period"]).welfare_sum.first().groupby(level=[0, 1, 2]).sum()
    assert np.allclose(periods, world)
    last = pair.world[pair.world.step == 100].set_index(by_run).welfare
    assert np.allclose(ep.set_index(by_run).welfare_final.sort_index(), last.sort_index())
    assert (ep.welfare_sum > 50 * ep.welfare_final).all()  # a sum over 100 steps


def test_episodes_carry_the_standard_welfare_functions_of_the_final_step(pair):
    """utilitarian, Atkinson (aversion 1), Nash and Rawlsian welfare from the agents' coin
    and utility at the episode's last step, as the per-step agent table records them."""
    from econsim import metrics

    by_run = ["mechanism", "seed", "episode"]
    last = pair.steps[pair.steps.step == pair.steps.step.max()].sort_values([*by_run, "agent"])
    ep = pair.episodes.set_index(by_run)
    for key, rows in last.groupby(by_run):
        coin, util = rows.coin.to_numpy(), rows.utility.to_numpy()
        row = ep.loc[key]
        assert row.utilitarian == pytest.approx(util.sum())
        assert row.utilitarian_mean == pytest.approx(util.mean())
        assert row.rawlsian == pytest.approx(util.min())
        assert row.atkinson == pytest.approx(float(metrics.atkinson(coin, 1.0)))
        assert row.atkinson_income == pytest.approx(np.exp(np.log(coin).mean()))
        assert row.nash == pytest.approx(np.log(coin).sum())


def test_same_seeds_play_the_same_world_under_every_mechanism(pair):
    skills = pair.periods.pivot_table(index=["seed", "agent"], columns="mechanism",
                                      values="skill", aggfunc="first")
    assert np.allclose(skills["us_federal"], skills["flat(rate=0.3)"])
    s = pair.steps
    first = s[s.step == 1].set_index(["mechanism", "seed", "agent"]).action
    assert (first["us_federal"] == first["flat(rate=0.3)"]).all()  # same random stream


def test_skill_and_episode_mean_the_same_in_every_table(pair, tmp_path):
    """skill: build pay in coin per house (10-30) in the steps, periods and a run's agents
    table; episodes count from 0 in what-ifs as in stored runs."""
    keys = ["mechanism", "seed", "agent"]
    steps = pair.steps.groupby(keys).skill.agg(["min", "max"])
    periods = pair.periods.groupby(keys).skill.first()
    assert np.allclose(steps["min"], steps["max"]) and np.allclose(steps["min"], periods)
    assert periods.between(10, 30).all() and periods.max() > 10.5
    assert set(pair.episodes.episode) == set(pair.periods.episode) == {0}
    data = scenario.load("gtb_us_federal").resolved()
    data["algorithm"].update(batch=1, epochs=1, minibatches=2, hidden=[16])
    data["train"].update(iterations=1, eval_episodes=2)
    run = runner.run(scenario.from_dict(data, "tiny"), seeds=[0], progress=False,
                     root=tmp_path)
    stored = pd.read_parquet(run.path / "periods.parquet")
    assert set(stored.episode) == {0, 1}
    assert pd.read_parquet(run.path / "agents.parquet").skill.between(10, 30).all()
    assert stored.skill.between(10, 30).all()


def test_tables_come_from_the_models_datacollector():
    res = whatif.run_whatif("gtb_flat30", None, episodes=1, seed=3, brains="random")
    model = EconModel("gtb_flat30", seed=3)  # random brains from the model's rng
    model.run_episodes(1)
    assert res.brains == "random"
    mv = model.datacollector.get_model_vars_dataframe().iloc[1:]
    assert res.mechanisms == ["flat(rate=0.3)"]
    assert np.allclose(res.world.welfare, mv.welfare) and np.allclose(res.world.rate_0, 0.3)
    av = model.datacollector.get_agent_vars_dataframe().reset_index()
    av = av[av.Step > 0]
    assert np.allclose(res.steps.coin, av.coin) and np.allclose(res.steps.action, av.action)


def test_progress_and_cancel_between_steps():
    seen = []
    res = whatif.run_whatif("gtb_us_federal", "free_market", episodes=2, seed=0,
                            progress=lambda f, text: seen.append((f, text)))
    assert seen[-1][0] == 1.0 and all(a[0] <= b[0] for a, b in zip(seen, seen[1:],
                                                                    strict=False))
    assert res.episodes_done == 2 and not res.cancelled and list(res.episodes.episode) == [0, 1]
    steps = iter(range(10_000))
    res = whatif.run_whatif("gtb_us_federal", "free_market", episodes=3, seed=0,
                            should_stop=lambda: next(steps) >= 150)
    assert res.cancelled and res.episodes_done == 1  # only whole episodes are kept
    assert set(res.steps.episode) == {0} and len(res.periods) == 40


def test_job_advances_in_chunks_and_reports_fraction():
    job = whatif.WhatIfJob.create("gtb_us_federal", ["flat", "saez"], episodes=1, seeds=0)
    assert job.fraction == 0.0 and not job.done
    job.advance(max_steps=50)
    assert 0.2 < job.fraction < 0.3 and "flat" in job.status()
    assert job.status().startswith("episode 1 of 2: flat")
    assert job.result().episodes.empty  # nothing finished yet
    job.advance()
    assert job.done and job.fraction == 1.0 and len(job.result().episodes) == 2


def test_tax_curve_is_eq_6_7():
    sched = pd.DataFrame({"mechanism": "flat", "lower": US_FEDERAL_CUTOFFS, "rate": 0.3})
    curve = whatif.tax_curve(sched, z_max=600, points=7)
    assert np.allclose(curve.tax, 0.3 * curve.income) and np.allclose(curve.marginal_rate, 0.3)
    fed = pd.DataFrame({"lower": US_FEDERAL_CUTOFFS, "rate": US_FEDERAL_RATES})
    c = whatif.tax_curve(fed, z_max=9.7, points=2)
    assert np.isclose(c.tax.iloc[-1], 0.97) and np.isclose(c.after_tax.iloc[-1], 9.7 - 0.97)


def test_other_games_and_idle_agents():
    er = whatif.run_whatif("er21_lio", None, episodes=2, seed=[0, 1])
    assert len(er.episodes) == 4 and "collective_return" in er.episodes
    assert er.periods.empty and er.schedules.empty and er.terrain is None
    idle = whatif.run_whatif("gtb_us_federal", None, episodes=1, seed=0, brains="noop")
    ep = idle.episodes.iloc[0]
    assert ep.houses_built == 0 and ep.trade_volume == 0 and ep.productivity == 40
    assert set(idle.terrain.terrain) == {"empty", "water", "wood source", "stone source"}


def test_plane_games_record_starts_and_landmarks_per_episode():
    """Navigation (capability Plane): ``plane`` holds each agent's start and goal per
    episode, in the plane's coordinates; the pictures and rows are of whole episodes."""
    res = whatif.run_whatif("nav_antipodal_cm3", None, episodes=2, seed=[0, 1])
    assert res.extent == (-1.5, 1.5, -1.5, 1.5)
    plane = res.plane
    assert list(plane.columns) == ["mechanism", "mechanism_name", "seed", "episode", "agent",
                                   "start_x", "start_y", "goal_x", "goal_y"]
    assert len(plane) == 2 * 2 * 4 and set(plane.agent) == {0, 1, 2, 3}
    for seed in (0, 1):  # episode 0: the state the model was built with
        model = EconModel("nav_antipodal_cm3", seed=seed)
        start, goals = model.game.describe(model.state), model.game.landmarks(model.state)
        rows = plane[(plane.seed == seed) & (plane.episode == 0)].sort_values("agent")
        np.testing.assert_allclose(rows[["start_x", "start_y"]], np.c_[start["x"][0],
                                                                       start["y"][0]])
        np.testing.assert_allclose(rows[["goal_x", "goal_y"]], goals)
    # the first step moves each agent from its start by at most one step's displacement
    first = res.steps[res.steps.step == 1].merge(plane, on=["mechanism", "seed", "episode",
                                                            "agent"])
    assert (np.hypot(first.x - first.start_x, first.y - first.start_y) < 0.2).all()
    assert sorted(res.frames) == [("none", s, e) for s in (0, 1) for e in (0, 1)]
    gtb = whatif.run_whatif("gtb_us_federal", None, episodes=1, seed=0, brains="noop")
    assert gtb.plane is None and gtb.extent is None


def test_replay_pictures_stay_within_their_budget(monkeypatch):
    """A long what-if keeps the pictures of its first whole episodes only (FRAME_BYTES);
    a cancelled episode has neither pictures nor plane rows."""
    monkeypatch.setattr(whatif, "FRAME_BYTES", 128 * 128 * 3 * 30)  # less than one episode
    res = whatif.run_whatif("nav_antipodal_cm3", None, episodes=3, seed=0)
    assert list(res.frames) == [("none", 0, 0)] and len(res.frames[("none", 0, 0)]) == 50
    assert res.episodes_done == 3 and len(res.plane) == 3 * 4
    job = whatif.WhatIfJob.create("nav_antipodal_cm3", [None], episodes=2, seeds=0)
    job.advance(max_steps=70)
    job.cancel()
    res = job.result()
    assert res.episodes_done == 1 and list(res.frames) == [("none", 0, 0)]
    assert set(res.plane.episode) == {0} and len(res.plane) == 4


def test_data_dictionary_documents_every_column(pair):
    d = pair.data_dictionary()
    assert set(d.table) == {"periods", "episodes", "steps", "world"}
    assert (d.meaning != "").all(), d[d.meaning == ""]


@pytest.mark.parametrize(("call", "match"), [
    (lambda: whatif.run_whatif("ipd_pg", "flat"), r"^mechanism: ipd has no taxes"),
    (lambda: whatif.run_whatif("gtb_flat30", {"name": "flat", "rate": -1}),
     r"^mechanism: rates must lie in \[0, 1\]"),
    (lambda: whatif.run_whatif("gtb_flat30", "robin_hood"), r"mechanism.name: 'robin_hood'"),
    (lambda: whatif.run_whatif("gtb_flat30", brains="smart"), r"^brains: 'smart'"),
    (lambda: whatif.run_whatif("gtb_flat30", episodes=0), r"^episodes: 0"),
    (lambda: whatif.run_whatif("gtb_flat30", seed=[1, 1]), r"^seeds: "),
    (lambda: whatif.compare(["flat"], "gtb_flat30"), r"^mechanisms: compare needs two"),
    (lambda: whatif.run_whatif(None), r"^scenario: required"),
])
def test_bad_input_is_one_line(call, match):
    with pytest.raises(ValueError, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def test_trained_brains_from_a_stored_run(tmp_path):
    run = runner.run(small("gtb_us_federal", 1, eval_episodes=1, ppo=True), seeds=[0, 1],
                     progress=False, root=tmp_path)
    brains = f"trained:{run.run_id}"
    res = whatif.compare([None, "free_market"], None, seeds=[1], brains=brains, root=tmp_path)
    assert res.scenario == "gtb_us_federal" and res.mechanisms == ["us_federal",
                                                                    "free_market"]
    assert np.allclose(res.episodes.top_rate, [0.37, 0.0])
    same = EconModel.from_run(run.run_id, seed=1, root=tmp_path)  # what the what-if plays
    same.run_episodes(1)
    mv = same.datacollector.get_model_vars_dataframe().iloc[1:]
    first = res.world[res.world.mechanism == "us_federal"]
    assert np.allclose(first.welfare, mv.welfare)
    with pytest.raises(ValueError, match=r"^seeds: 5 not trained in run"):
        whatif.run_whatif(None, seed=5, brains=brains, root=tmp_path)
    with pytest.raises(ValueError, match="not found"):
        whatif.run_whatif(None, brains="trained:nope", root=tmp_path)


def test_trained_agents_re_learn_under_each_mechanism(tmp_path):
    """adapt=K: each mechanism's agents are the run's, trained K more iterations under it
    (all seeds at once), exactly as training them by hand; progress counts the learning."""
    from econsim.model import load_trainer
    from learners.brains import team_brains
    from mechanisms import registry

    run = runner.run(small("gtb_us_federal", 1, eval_episodes=1, ppo=True), seeds=[0, 1],
                     progress=False, root=tmp_path)
    brains = f"trained:{run.run_id}"
    job = whatif.WhatIfJob.create(None, [None, "free_market"], 1, [0, 1], brains, tmp_path,
                                  adapt=2)
    seen = []
    res = job.run(progress=lambda f, s: seen.append((f, s)), every_s=0.0)
    assert res.adapted == 2 and not res.cancelled
    assert any(s.startswith("agents re-learning under free_market: iteration 2 of 2")
               for _, s in seen)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    by_hand = load_trainer(run.run_id, tmp_path)
    by_hand.use_mechanism(registry.build({"name": "free_market"}))
    by_hand.iterate()
    by_hand.iterate()
    model = EconModel("gtb_us_federal", brains=team_brains(by_hand, 1), seed=1,
                      mechanism="free_market")
    model.run_episodes(1)
    mv = model.datacollector.get_model_vars_dataframe().iloc[1:]
    mine = res.world[(res.world.mechanism == "free_market") & (res.world.seed == 1)]
    assert np.allclose(mine.welfare.to_numpy(), mv.welfare.to_numpy())
    fixed = whatif.compare([None, "free_market"], None, seeds=[1], brains=brains,
                           root=tmp_path)
    assert fixed.adapted == 0  # behaviour held fixed: the stored agents
    assert "adapt=2" in res.rerun_code() and f"root={str(tmp_path)!r}" in res.rerun_code()
    # every export says how the agents behaved, and the data dictionary explains the column
    for r, said in ((fixed, "(behaviour held fixed)"),
                    (res, "(re-learned 2 iterations under each mechanism)")):
        for name, table in r.tables().items():
            assert set(table.agents) == {f"trained agents of run {run.run_id} {said}"}, name
    meaning = fixed.data_dictionary().set_index(["table", "column"]).meaning
    assert "held fixed" in meaning.loc[("episodes", "agents")]
    stop = whatif.WhatIfJob.create(None, ["free_market"], 1, [0], brains, tmp_path, adapt=3)
    stop.advance(max_steps=1)
    stop.advance(should_stop=lambda: True)
    assert stop.cancelled and stop.result().episodes.empty
    for bad, match in (({"adapt": -1}, "adapt: -1 is not allowed"),
                       ({"adapt": 2, "brains": "random"}, "only trained agents re-learn")):
        with pytest.raises(ValueError, match=match):
            whatif.WhatIfJob.create("gtb_us_federal", [None], 1, [0],
                                    bad.get("brains", brains), tmp_path, adapt=bad["adapt"])


def test_summary_intervals_are_across_seeds_and_differences_are_paired(pair):
    conf = pair.confidence(["welfare_sum", "nash"])
    assert list(conf.mechanism.unique()) == pair.mechanisms and (conf.seeds == 2).all()
    seeds = pair.episodes.groupby(["mechanism", "seed"]).welfare_sum.mean()
    row = conf[(conf.mechanism == "us_federal") & (conf.outcome == "welfare_sum")].iloc[0]
    assert row["mean"] == pytest.approx(seeds["us_federal"].mean())
    assert row.ci_low < row["mean"] < row.ci_high
    diff = pair.differences()  # baseline: the first mechanism
    assert set(diff.baseline) == {"us_federal"} and set(diff.mechanism) == {"flat(rate=0.3)"}
    assert set(diff.outcome) == set(pair.outcomes())
    assert "seed" not in pair.outcomes() and "mechanism_rate" not in pair.outcomes()


def test_scripted_workers_are_the_default_and_build_and_trade():
    """The default what-if brain of GTB: rule-based workers who gather, build houses, trade
    and earn income (Random stays available as the null model)."""
    res = whatif.run_whatif("gtb_free_market", None, episodes=1, seed=[0, 1, 2, 3])
    assert res.brains == "scripted"
    ep = res.episodes
    assert (ep.houses_built > 0).all() and (ep.trade_volume > 0).sum() >= 3
    assert (ep.pre_tax_income > 0).all()
    per = res.periods.groupby(["seed", "agent"]).agg(skill=("skill", "first"),
                                                      houses=("houses_built", "sum"))
    builders = per[per.houses > 0]
    assert len(builders) >= 4 and builders.skill.min() >= 10  # houses by skill
    random = whatif.run_whatif("gtb_free_market", None, episodes=1, seed=[0, 1, 2, 3],
                               brains="random")
    assert random.brains == "random"
    assert ep.houses_built.sum() > 10 * max(1.0, random.episodes.houses_built.sum())
    # a seed's play is its own: seed 2 alone is seed 2 beside others
    alone = whatif.run_whatif("gtb_free_market", None, episodes=1, seed=[2])
    pd.testing.assert_frame_equal(
        alone.episodes.reset_index(drop=True),
        ep[ep.seed == 2].reset_index(drop=True), check_dtype=False)


def test_the_default_what_if_shows_a_division_of_labour_by_skill():
    """The what-if's defaults (scenario, scripted workers): in every skill half the agents do
    something: the more skilled half builds houses and buys resources, the less skilled half
    gathers and sells them; both earn pre-tax income."""
    res = whatif.run_whatif(whatif.DEFAULT_SCENARIO, None, episodes=1, seed=[0, 1, 2, 3])
    assert res.brains == "scripted"
    per = res.periods.groupby(["seed", "agent"]).agg(
        skill=("skill", "first"), houses=("houses_built", "sum"),
        gathered=("wood_gathered", "sum"), stone=("stone_gathered", "sum"),
        trade=("trade_income", "sum"), income=("pre_tax_income", "sum"))
    per["gathered"] += per.pop("stone")
    per["half"] = pd.qcut(per.skill, 2, labels=["less skilled", "more skilled"])
    by = per.groupby("half", observed=True).agg(
        houses=("houses", "sum"), gathered=("gathered", "sum"),
        sellers=("trade", lambda t: int((t > 0).sum())),
        buyers=("trade", lambda t: int((t < 0).sum())), income=("income", "sum"))
    assert by.loc["more skilled", "houses"] > 0 and by.loc["more skilled", "buyers"] > 0
    assert by.loc["less skilled", "gathered"] > 0 and by.loc["less skilled", "sellers"] > 0
    assert (by.income > 0).all()


def test_labour_aversion_makes_scripted_workers_work_less():
    base = whatif.run_whatif("gtb_us_federal", None, episodes=1, seed=[0, 1])
    lazy = whatif.run_whatif("gtb_us_federal", None, episodes=1, seed=[0, 1],
                             labour_aversion=1.5)
    assert lazy.episodes.labor.sum() < base.episodes.labor.sum()
    assert lazy.agents_text() == "scripted workers (rule-based), labour aversion 1.5"
    assert "labour_aversion=1.5" in lazy.rerun_code()
    assert set(lazy.tables()["episodes"].agents) == {lazy.agents_text()}
    for bad, match in ((float("nan"), "labour_aversion: nan is not allowed"),
                       (-1.0, "labour_aversion: -1.0 is not allowed"),
                       ("2", "labour_aversion: '2' is not allowed")):
        with pytest.raises(ValueError, match=match) as err:
            whatif.run_whatif("gtb_us_federal", None, labour_aversion=bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="only scripted workers have one"):
        whatif.run_whatif("gtb_us_federal", None, brains="random", labour_aversion=2.0)


def test_taxes_bite_scripted_workers():
    """A 70% flat tax leaves most scripted workers idle: less labour and fewer houses."""
    res = whatif.compare(["free_market", {"name": "flat", "rate": 0.7}], "gtb_free_market",
                         episodes=1, seeds=[0, 1, 2, 3])
    by = res.episodes.groupby("mechanism", sort=False)[["labor", "houses_built"]].sum()
    assert by.loc["flat(rate=0.7)", "labor"] < 0.5 * by.loc["free_market", "labor"]
    assert by.loc["flat(rate=0.7)", "houses_built"] < by.loc["free_market", "houses_built"]


def test_scripted_brains_are_gtbs_only():
    with pytest.raises(ValueError, match="no scripted workers for 'ipd'.*games with them: "
                                         "gtb") as err:
        whatif.run_whatif("ipd_pg", None, brains="scripted")
    assert "\n" not in str(err.value)
    assert whatif.run_whatif("ipd_pg", None).brains == "random"  # the default elsewhere


def test_rerun_code_plays_the_same_what_if_again(pair, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / f"{pair.scenario}.toml").write_text(pair.scenario_toml)
    code = pair.rerun_code() + f"res.episodes.to_csv({str(tmp_path / 'again.csv')!r}, " \
        "index=False)\n"
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=300,
                   env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    again = pd.read_csv(tmp_path / "again.csv")
    np.testing.assert_allclose(again.welfare_sum, pair.episodes.welfare_sum)
    assert list(again.mechanism) == list(pair.episodes.mechanism)


def test_a_schedule_on_other_brackets_than_the_games_is_refused_before_play():
    """The game applies a mechanism's rates to its own brackets: a custom schedule with other
    edges would be silently wrong (or fail mid-play), so it is refused with one line."""
    import re

    from econsim import scenario

    cutoffs = scenario.load("gtb_free_market").make_game().cutoffs
    two = {"name": "custom", "thresholds": [0.0, 50.0], "rates": [0.1, 0.6]}
    game_edges = ", ".join(f"{v:g}" for v in cutoffs)
    with pytest.raises(ValueError, match=r"its bracket edges \(0, 50\) are not the game's "
                       + re.escape(f"tax_cutoffs ({game_edges})")) as err:
        whatif.WhatIfJob.create("gtb_free_market", [two], 1, [0])
    assert "\n" not in str(err.value)
    shifted = {"name": "custom", "thresholds": [0.0, *(float(c) + 1 for c in cutoffs[1:])],
               "rates": [0.1] * len(cutoffs)}  # as many brackets, not the game's edges
    with pytest.raises(ValueError, match="not the game's tax_cutoffs"):
        whatif.WhatIfJob.create("gtb_free_market", [shifted], 1, [0])
    with pytest.raises(ValueError, match="not the game's tax_cutoffs"):
        EconModel("gtb_free_market", mechanism=two)


def test_the_atkinson_measures_take_the_chosen_inequality_aversion():
    res = whatif.run_whatif("gtb_us_federal", None, episodes=1, seed=[0],
                            atkinson_epsilon=2.0)
    ep = res.episodes.iloc[0]
    last = res.steps[res.steps.step == res.steps.step.max()].sort_values("agent")
    coin = np.maximum(last.coin.to_numpy(), 0.0)
    ede = np.mean(coin ** -1.0) ** -1.0  # epsilon 2: the harmonic mean
    assert ep.atkinson_epsilon == 2.0 and ep.atkinson_income == pytest.approx(ede)
    assert ep.atkinson == pytest.approx(1 - ede / coin.mean())
    assert "atkinson_epsilon" not in res.outcomes()
    assert "atkinson_epsilon=2.0" in res.rerun_code()
    with pytest.raises(ValueError, match="atkinson_epsilon: -1 is not allowed"):
        whatif.run_whatif("gtb_us_federal", None, atkinson_epsilon=-1)
