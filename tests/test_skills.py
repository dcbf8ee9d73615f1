"""The skill analysis of an HSD team (econsim.skills, Diss Fig. 4.2): hand-made traces with known
tables, and a trace of a tiny trained team checked against the game's own records."""

import numpy as np
import pandas as pd
import pytest

from econsim import envs, skills
from tests.test_hsd import hsd


def hand_trace() -> pd.DataFrame:
    """One seed, two episodes, two agents, two skills: skill 0 shoots, skill 1 steals."""
    rows = []
    for ep in range(2):
        for step in range(4):
            for agent, skill in ((0, 0), (1, 1)):
                rows.append({
                    "seed": 5, "episode": ep, "step": step, "agent": agent, "skill": skill,
                    "segment": step // 2, "choice": step % 2 == 0,
                    "action": "shoot" if skill == 0 else "down",
                    "x": -9.0 if agent == 0 else 8.99, "z": 17.5 if agent == 0 else -18.0,
                    "team_puck": agent == 0, "shot": int(skill == 0 and step < 2 + ep),
                    "goal": 0, "steal": int(skill == 1 and step == 3), "interception": 0,
                    "possession": int(agent == 0), "win": int(step == 3)})
    return pd.DataFrame(rows)


def test_events_by_skill_counts_each_skills_events_per_episode():
    ev = skills.events_by_skill(hand_trace())
    assert set(ev["event"]) == {"shot", "goal", "steal", "interception",
                                "possession"}  # not win/lose/draw
    shots = ev[ev.event == "shot"].set_index(["episode", "skill"])["count"]
    assert shots.to_dict() == {(0, 0): 2, (0, 1): 0, (1, 0): 3, (1, 1): 0}
    steals = ev[ev.event == "steal"].set_index(["episode", "skill"])["count"]
    assert steals.to_dict() == {(0, 0): 0, (0, 1): 1, (1, 0): 0, (1, 1): 1}
    s = skills.summary(ev, ["skill", "event"], "count")
    row = s[(s.skill == 0) & (s.event == "shot")].iloc[0]
    assert row["mean"] == 2.5 and row["episodes"] == 2
    assert row["se"] == pytest.approx(np.std([2, 3], ddof=1) / np.sqrt(2))
    assert skills.extreme_skills(ev, 5) == {"offensive": 0, "defensive": 1}


def test_actions_usage_heatmap_and_timeline_of_a_hand_trace():
    tr = hand_trace()
    act = skills.actions_by_skill(tr)
    assert len(act) == 2 * 2 * 9  # every episode x skill x action, zeros included
    share = act.set_index(["episode", "skill", "action"])["share"]
    assert share[(0, 0, "shoot")] == 1.0 and share[(0, 1, "down")] == 1.0
    assert share[(0, 0, "down")] == 0.0
    use = skills.usage(tr).set_index(["episode", "skill", "team_puck"])["choices"]
    assert use[(0, 0, True)] == 2 and use[(0, 0, False)] == 0  # chosen at steps 0 and 2
    assert use[(0, 1, False)] == 2
    heat = skills.heatmap(tr)
    assert len(heat) == 2 * 18 * 36
    hot = heat[heat.steps > 0].set_index(["skill", "col", "row"])["steps"]
    assert hot.to_dict() == {(0, 0, 35): 8, (1, 17, 0): 8}  # x=-9, z=17.5 / x=8.99, z=-18
    tl = skills.timeline(tr, episodes=1)
    assert len(tl) == 2 * 2 and set(tl.segment) == {0, 1}


def test_pca_separates_skills_with_different_event_profiles():
    ev = skills.events_by_skill(hand_trace())
    pts, loads = skills.pca(ev, "event")
    assert list(loads.component) == [1, 2]
    assert loads.explained.sum() == pytest.approx(1.0)
    means = pts.groupby("skill").pc1.mean()
    assert abs(means[0] - means[1]) > 2.0  # shots vs steals: apart along component 1
    first = loads[loads.component == 1].iloc[0]
    assert abs(first["shot"]) > abs(first["goal"])  # the shot count loads on it, goals not


def test_a_trained_teams_trace_matches_the_games_records():
    t = hsd([0, 2], max_steps=40)
    t.iterate()
    tr = skills.trace(t, episodes=3)
    assert set(tr.seed) == {0, 2} and set(tr.episode) == {0, 1, 2}
    assert (tr.groupby(["seed", "episode", "step"]).size() == 3).all()  # every agent, step
    # a skill is held through its segment: one skill per seed x episode x segment x agent
    assert (tr.groupby(["seed", "episode", "segment", "agent"]).skill.nunique() == 1).all()
    assert tr.x.between(-9, 9).all() and tr.z.between(-18, 18).all()
    # the first step's possession is the kick-off's: the learning team's if one of it holds
    first = tr[tr.step == 0]
    holds = first.groupby(["seed", "episode"]).team_puck.agg(["min", "max"])
    assert (holds["min"] == holds["max"]).all()  # the same for the three teammates
    # an agent holding the puck after a step sees its team in possession at the next step
    nxt = tr.assign(step=tr.step - 1).set_index(["seed", "episode", "step", "agent"])
    held = tr[tr.possession > 0].set_index(["seed", "episode", "step", "agent"]).index
    held = held[held.isin(nxt.index)]
    assert len(held) > 0 and nxt.loc[held, "team_puck"].all()
    # the events by skill add up to the agents' events over the trace
    ev = skills.events_by_skill(tr)
    total = ev.groupby(["seed", "event"])["count"].sum()
    for seed in (0, 2):
        for event in ("shot", "steal", "possession"):
            assert total[(seed, event)] == tr[tr.seed == seed][event].sum()


def test_a_fixed_skill_holds_and_a_seed_traces_alone_as_beside_others():
    t = hsd([0, 2], max_steps=40)
    t.iterate()
    fixed = skills.trace(t, episodes=2, fixed={1: 3})
    assert (fixed[fixed.agent == 1].skill == 3).all()
    together = skills.trace(t, episodes=2)
    alone = skills.trace(t.replica(1), episodes=2)
    pd.testing.assert_frame_equal(
        together[together.seed == 2].reset_index(drop=True), alone.reset_index(drop=True))


def test_bad_inputs_fail_with_one_line():
    from learners.qmix import QMIXConfig, QMIXTrainer

    q = QMIXTrainer(envs.make("sts2", max_steps=20), QMIXConfig(), [0])
    with pytest.raises(ValueError, match="needs a trained HSD team") as err:
        skills.trace(q, 2)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="episodes must be in 1..10000"):
        skills.trace(hsd([0]), 0)


def count_trace(episodes: int, plan) -> pd.DataFrame:
    """A trace of one seed: ``plan(episode) -> {skill: (steps, {event: count})}``, the skill's
    agent-steps in that episode with its events on the first steps."""
    rows = []
    for ep in range(episodes):
        for skill, (steps, counts) in plan(ep).items():
            for t in range(steps):
                rows.append({"seed": 3, "episode": ep, "skill": skill, "agent": 0, "step": t,
                             **{e: int(t < counts.get(e, 0)) for e in ("shot", "steal")}})
    return pd.DataFrame(rows)


def test_contrasts_find_a_shooting_and_a_stealing_skill():
    tr = count_trace(30, lambda ep: {0: (10, {"shot": 2 + ep % 3}), 1: (20, {"steal": 1 + ep % 2}),
                                     2: (10, {"shot": 3, "steal": 0})})
    c = skills.contrasts(tr).set_index(["skill_a", "skill_b", "event"])
    assert len(c) == 3 * 2  # pairs x events
    shot = c.loc[(0, 1, "shot")]
    assert shot["rate_a"] == pytest.approx(100 * 90 / 300) and shot["rate_b"] == 0.0
    assert shot["distinct"] and shot["lo"] > 0
    assert c.loc[(0, 1, "steal")]["distinct"] and c.loc[(0, 1, "steal")]["hi"] < 0
    assert not c.loc[(0, 2, "steal")]["distinct"]  # neither steals
    pairs = skills.distinct_pairs(skills.contrasts(tr)).set_index(["skill_a", "skill_b"])
    assert pairs.loc[(0, 1), "opposite"] and pairs.loc[(0, 1), "a_more"] == "shot"
    assert pairs.loc[(0, 1), "b_more"] == "steal"
    assert not pairs.loc[(0, 2), "opposite"]  # 0 and 2 both shoot, 30 per 100 steps each


def test_contrasts_do_not_call_a_skill_used_more_often_different():
    # skill 0 is used twice as much with the same rates per step; skill 1 alike in every episode
    tr = count_trace(20, lambda ep: {0: (20, {"shot": 4, "steal": 2 * (ep % 2)}),
                                     1: (10, {"shot": 2, "steal": ep % 2})})
    c = skills.contrasts(tr)
    assert (c["diff"].abs() < 1e-12).all() and not c["distinct"].any()
    assert not skills.distinct_pairs(c)["opposite"].any()
    with pytest.raises(ValueError, match="level must be in") as err:
        skills.contrasts(tr, level=1.5)
    assert "\n" not in str(err.value)


def test_contrasts_rarely_call_alike_skills_different():
    # benchmarks/skill_calibration.py --episodes 50 --seeds 60 --old (f446f16's skills.py):
    # 6 of 60 simulated seeds here (nominal 5% = 3), 11 with the earlier Bonferroni
    # percentile interval
    from benchmarks.skill_calibration import false_calls

    assert false_calls(skills.contrasts, episodes=50, seeds=60) <= 8


def test_a_scaled_pca_is_not_one_frequent_event():
    """Possession steps in the hundreds make the whole first component unscaled; scaled,
    the rare events that set two skills apart load on it too."""
    rng = np.random.default_rng(0)
    rows = []
    for ep in range(40):
        for skill in (0, 1):
            rows.append({"seed": 0, "episode": ep, "skill": skill, "event": "possession",
                         "count": float(rng.integers(50, 250))})
            rows.append({"seed": 0, "episode": ep, "skill": skill, "event": "shot",
                         "count": float(rng.poisson(3 if skill == 0 else 0.2))})
    ev = pd.DataFrame(rows)
    raw = skills.pca(ev, "event")[1].set_index("component")
    scaled_pts, scaled = skills.pca(ev, "event", scale=True)
    assert abs(raw.loc[1, "possession"]) > 0.99 and raw.loc[1, "explained"] > 0.99
    assert abs(scaled.set_index("component").loc[1, "shot"]) > 0.5
    means = scaled_pts.groupby("skill").pc1.mean()
    assert abs(means[0] - means[1]) > 1.0  # the shooting skill stands apart
