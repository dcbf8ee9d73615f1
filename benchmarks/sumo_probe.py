"""Does a trained SUMO merge policy steer to its goal lane? One car alone, then the pair.

For a stored run on ``sumo_merge`` (its last checkpoint, every seed), greedy actions:

* **one car** on the empty road (the game's induced one-car game), from every start lane to
  every goal lane, departing at once: its signed offset from the goal lane's centre in
  sub-lanes (0.8 m; positive: the car ends left of it), whether it arrived in its goal lane
  (the game's rule: the 3.2 m band its centre ends in), and its actions while it drove (``n``
  no-op, ``a`` accelerate, ``d`` decelerate, ``l`` one sub-lane left, ``r`` right). An actor
  with an ``o_others`` input (CM3's stage 2, IAC, COMA) sees the empty grid that an empty road
  gives it; a game's action mask (``ttc_mask``) applies.
* **the pair** in the training formation (``env.formation``: C1, lanes [1, 2] to goals
  [3, 0], or C3, to [2, 1]) with one car departing 0-3 steps after the other: merged or
  not, collisions, each car's offset and actions.

A car that cannot reach its goal lane alone will not swap lanes with another; the one-car
table separates that from a failure to cooperate.

    .venv/bin/python benchmarks/sumo_probe.py sumo_cm3-20261202-185624-5f67 \\
        --root runs/bench_sumo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import stored_trainer  # noqa: E402
from econsim.envs.sumo_merge import (  # noqa: E402
    ACTION_NAMES,
    ARRIVED,
    CONFIGS,
    DRIVING,
    LANES,
    STATUS_NAMES,
    SUBLANE,
    State,
    SumoMerge,
    lane_centre,
)
from learners.multigoal import MultiGoalTrainer  # noqa: E402

LETTERS = "".join(name[0] for name in ACTION_NAMES)  # n, a, d, l, r
# (state, observations [1, N, D], legal actions [1, N, A]) -> actions [1, N]
Actor = Callable[[State, np.ndarray, np.ndarray], np.ndarray]


def padded(obs: np.ndarray, width: int) -> np.ndarray:
    """Observations widened to ``width`` with zeros: a one-car game's observation as an actor
    with an ``o_others`` input sees it on the empty road (no vehicle in its grid)."""
    out = np.zeros((*obs.shape[:-1], width), np.float32)
    out[..., :obs.shape[-1]] = obs
    return out


def greedy_actor(trainer: MultiGoalTrainer, r: int) -> Actor:
    """Replica ``r``'s most probable allowed action, for observations of the game's size or
    of its induced one-car game (``padded``)."""
    one, width = trainer.replica(r), trainer.stage_game().obs_size

    @torch.no_grad()
    def act(state: State, obs: np.ndarray, legal: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(padded(obs, width))[None]
        probs = one.policy(one.params, x, 0.0, torch.from_numpy(legal)[None])[0]
        return probs.argmax(-1).numpy()
    return act


def placed(game: SumoMerge, lanes: Sequence[int], goals: Sequence[int],
           delays: Sequence[int]) -> State:
    """A one-world state of ``game`` with the cars' start lanes, goal lanes and departure
    steps set (the simulation loads them on the first step)."""
    if max(delays) > game.max_delay:
        raise ValueError(f"departure delays {list(delays)} exceed the game's largest, "
                         f"{game.max_delay} steps")
    state = game.reset(1, np.random.default_rng(0))
    state.lane[0], state.goal[0], state.delay[0] = lanes, goals, delays
    state.y[0] = lane_centre(state.lane[0])
    return state


def drive(game: SumoMerge, state: State, act: Actor) -> tuple[State, list[str], dict]:
    """Play one world to its end: the last state, each car's action letters (the steps it
    drove), the summed per-car events."""
    letters, events = [""] * game.n_agents, {}
    while True:
        obs, legal = game.observe(state), game.action_mask(state)
        a = np.asarray(act(state, obs, legal), np.int64).reshape(1, -1)
        step = game.step(state, a, None)
        for i in np.flatnonzero(state.status[0] == DRIVING):
            letters[i] += LETTERS[a[0, i]]
        for k, v in step.info.items():
            events[k] = events.get(k, 0) + v[0]
        state = step.state
        if step.done[0]:
            return state, letters, events


def offsets(state: State) -> np.ndarray:
    """Each car's signed offset from its goal lane's centre, in sub-lanes."""
    return np.rint((state.y[0] - lane_centre(state.goal[0])) / SUBLANE).astype(int)


def one_car(game: SumoMerge, act: Actor, seed: int = 0) -> pd.DataFrame:
    """Every start lane x goal lane of one car on the empty road (``game``: a one-car game)."""
    rows = []
    for start in range(LANES):
        for goal in range(LANES):
            state, letters, _ = drive(game, placed(game, [start], [goal], [0]), act)
            arrived = state.status[0, 0] == ARRIVED
            rows.append({"seed": seed, "start": start, "goal": goal,
                         "status": STATUS_NAMES[state.status[0, 0]],
                         "offset": int(offsets(state)[0]),
                         "reached": bool(arrived and game.describe(state)["lane"][0, 0] == goal),
                         "actions": letters[0]})
    return pd.DataFrame(rows)


def formation(game: SumoMerge) -> tuple[tuple[int, int], tuple[int, int]]:
    """The game's training formation: (initial lanes, goal lanes)."""
    return CONFIGS[game.params.formation]


def pair(game: SumoMerge, act: Actor, seed: int = 0) -> pd.DataFrame:
    """The training formation with car 0 departing 0-3 steps after car 1 and the reverse."""
    rows = []
    for delays in ([0, 0], [1, 0], [2, 0], [3, 0], [0, 1], [0, 2], [0, 3]):
        state, letters, ev = drive(game, placed(game, *formation(game), delays), act)
        off = offsets(state)
        rows.append({"seed": seed, "delays": f"{delays[0]}/{delays[1]}",
                     "merged": bool(ev["merged"][0]), "collisions": int(ev["collision"].sum()),
                     "offset_0": int(off[0]), "offset_1": int(off[1]),
                     "actions_0": letters[0], "actions_1": letters[1]})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="run id of a stored run on sumo_merge")
    p.add_argument("--root", default=None, help="folder holding run folders")
    p.add_argument("--algorithm", default="cm3", help="the run's learner (default cm3)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    trainer = stored_trainer(args.run, args.root, "sumo_merge", args.algorithm)
    print(f"{args.run} at iteration {trainer.iteration} (stage {trainer.stage})")
    alone, both = [], []
    try:
        with trainer.game.induced() as single:
            for r, seed in enumerate(trainer.seeds):
                alone.append(one_car(single, greedy_actor(trainer, r), int(seed)))
        if trainer.stage_game().n_agents > 1:
            for r, seed in enumerate(trainer.seeds):
                both.append(pair(trainer.game, greedy_actor(trainer, r), int(seed)))
    finally:
        trainer.game.close()  # its SUMO processes
    alone = pd.concat(alone, ignore_index=True)
    both = pd.concat(both, ignore_index=True) if both else pd.DataFrame()
    with pd.option_context("display.width", 250, "display.max_colwidth", 80):
        for seed, rows in alone.groupby("seed"):
            print(f"\nseed {seed}: one car reaches its goal lane from {rows.reached.sum()} of "
                  f"{len(rows)} start x goal pairs")
            print(rows.drop(columns="seed").to_string(index=False))
        if len(both):
            lanes, goals = formation(trainer.game)
            print(f"\nthe pair, {lanes} -> {goals} (delays: car 0 / car 1, steps)")
            print(both.to_string(index=False))
    return alone, both


if __name__ == "__main__":
    main()
