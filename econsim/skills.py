"""Skill analysis of a trained HSD team on STS2 (Diss §4.4, Figure 4.2 a-g and Figure 4.3).

:func:`trace` plays greedy test episodes with the trained team (both levels greedy, as the
Diss's test episodes) and returns one tidy row per seed x episode x step x agent: the skill
the agent executes, its primitive action, its position on the rink, whether its team has the
puck, and its game events of that step. Everything else is a table computed from that trace,
each with the unit of replication explicit (an episode of one seed's policy; the Diss shows
one policy, averaged over 100 test episodes with standard errors):

* :func:`events_by_skill` (Fig. 4.2a): per seed x episode x skill x event, how often the event
  happened to an agent executing that skill, summed over the agents;
* :func:`actions_by_skill` (Fig. 4.2c): the distribution of primitive actions per skill;
* :func:`pca` (Fig. 4.2b, d): the first two principal components of those per-episode
  vectors (events or action shares), fitted per seed;
* :func:`usage` (Fig. 4.2e): high-level choices of each skill with and without possession;
* :func:`timeline` (Fig. 4.2f): the skill each agent chose at each high-level step;
* :func:`heatmap` (Fig. 4.2g): primitive steps spent in each skill per cell of the 36 x 18
  rink grid;
* :func:`summary`: mean and standard error over episodes of any of the per-episode tables;
* :func:`contrasts` and :func:`distinct_pairs`: whether two skills' event profiles differ,
  measured: each event's rate per 100 steps spent in the skill, the difference between two
  skills with a bootstrap confidence interval over test episodes.

Used by ``benchmarks/hsd.py --analysis`` (``docs/hsd_skills.png``, a CSV of the tidy table)
and the app's run page.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from econsim.core import Game, ReplicaRNG
from econsim.envs.sts2 import (
    ACTION_NAMES,
    EVENTS,
    HALF_X,
    HALF_Z,
    OBS_OWN_X,
    OBS_OWN_Z,
    OBS_TEAM_PUCK,
)

__all__ = ["trace", "events_by_skill", "actions_by_skill", "pca", "usage", "timeline",
           "heatmap", "summary", "extreme_skills", "contrasts", "distinct_pairs"]

KEYS = ["seed", "episode", "skill"]


def _check_hsd(trainer: Any) -> None:
    from learners.hsd import HSDTrainer

    if not isinstance(trainer, HSDTrainer):
        raise ValueError(f"skill analysis: needs a trained HSD team (algorithm hsd, "
                         f"hsd-scripted or hsd-ext), not {type(trainer).__name__}")
    if trainer.game.name != "sts2":
        raise ValueError(f"skill analysis: defined for STS2, not {trainer.game.name!r}")


@torch.no_grad()
def trace(trainer: Any, episodes: int = 100, game: Game | None = None,
          fixed: dict[int, int] | None = None) -> pd.DataFrame:
    """``episodes`` greedy test episodes per seed of a trained HSD ``trainer`` on STS2, one
    row per seed x episode x step x agent (steps before the episode's end): ``seed``,
    ``episode``, ``step``, ``agent``, ``skill``, ``segment`` (the high-level step, ``step //
    t_seg``), ``choice`` (the skill was chosen at this step), ``action`` (name), ``x``, ``z``
    (the agent's position before the step, rink units; the team attacks +z), ``team_puck``
    (its team has the puck before the step) and one column per game event of the step
    (``possession``: the agent itself holds the puck after it).

    The episodes come from streams of their own (``skills/env``, ``skills/act``, and the
    seed), so the trace of a seed depends on that seed alone and not on training."""
    _check_hsd(trainer)
    if not 1 <= episodes <= 10_000:
        raise ValueError(f"skill analysis: episodes must be in 1..10000, got {episodes}")
    rng = ReplicaRNG.from_seeds(trainer.seeds, "skills/env")
    act = ReplicaRNG.from_seeds(trainer.seeds, "skills/act")
    batch = trainer.play(game or trainer.game, 0.0, episodes, rng, act, fixed)
    T, RB = batch.mask.shape
    N = batch.actions.shape[2]
    t, w, n = np.nonzero(np.broadcast_to(batch.mask.numpy()[..., None] > 0, (T, RB, N)))
    obs = batch.obs.numpy()[t, w, n]
    t_seg = trainer.cfg.t_seg
    cols: dict[str, Any] = {
        "seed": np.asarray(trainer.seeds)[w // episodes], "episode": w % episodes,
        "step": t, "agent": n, "skill": batch.extra["z"].numpy()[t, w, n],
        "segment": t // t_seg, "choice": t % t_seg == 0,
        "action": np.asarray(ACTION_NAMES)[batch.actions.numpy()[t, w, n]],
        "x": obs[:, OBS_OWN_X] * HALF_X, "z": obs[:, OBS_OWN_Z] * HALF_Z,
        "team_puck": obs[:, OBS_TEAM_PUCK] > 0.5,
    }
    for name, v in batch.events.items():
        cols[name] = v.numpy()[t, w, n]
    out = pd.DataFrame(cols)
    out.attrs["skills"] = trainer.K  # skills never chosen still get their (zero) rows
    return out


def _skills(tr: pd.DataFrame) -> list[int]:
    """Every skill of the team (``K`` of the trace), else those the trace shows."""
    if "skills" in tr.attrs:
        return list(range(int(tr.attrs["skills"])))
    return sorted(tr["skill"].unique())


def _complete(table: pd.DataFrame, tr: pd.DataFrame, name: str, names: list[str]
              ) -> pd.DataFrame:
    """``table`` (indexed by seed, episode, skill, name) with a row for every combination,
    zero where nothing happened (a skill never used in an episode counts 0)."""
    episodes = tr[["seed", "episode"]].drop_duplicates()
    full = pd.MultiIndex.from_tuples(
        [(s, e, k, x) for s, e in episodes.itertuples(index=False) for k in _skills(tr)
         for x in names], names=[*KEYS, name])
    return table.reindex(full, fill_value=0).reset_index()


def events_by_skill(tr: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4.2a as a tidy table: ``seed, episode, skill, event, count`` (the events of the
    agents executing the skill, summed over agents and steps of the episode; ``possession``
    counts steps with the puck). The match results (win, lose, draw) are not skill events."""
    events = [e for e in EVENTS if e in tr.columns and e not in ("win", "lose", "draw")]
    long = tr.groupby(KEYS)[events].sum().stack()
    long.index = long.index.set_names([*KEYS, "event"])
    return _complete(long.rename("count"), tr, "event", events)


def actions_by_skill(tr: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4.2c as a tidy table: ``seed, episode, skill, action, count, share`` (the share of
    the skill's primitive steps in that episode; 0 where the skill was not used)."""
    counts = tr.groupby([*KEYS, "action"]).size().rename("count")
    out = _complete(counts, tr, "action", list(ACTION_NAMES))
    total = out.groupby(KEYS)["count"].transform("sum")
    out["share"] = np.where(total > 0, out["count"] / total.where(total > 0, 1), 0.0)
    return out


def pca(table: pd.DataFrame, column: str, value: str = "count", scale: bool = False
        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 4.2b/d: each seed x episode x skill's vector of ``value`` over ``column`` (e.g.
    the event counts of :func:`events_by_skill`) projected on the first two principal
    components, fitted per seed on all its episodes and skills (centred; with ``scale`` also
    divided by each entry's standard deviation, so that a frequent event such as possession
    steps does not make the whole first component). Returns the projections (``seed,
    episode, skill, pc1, pc2``) and per seed the explained variance ratios and loadings
    (``seed, component, explained, <one column per entry>``)."""
    points, loads = [], []
    for seed, part in table.groupby("seed"):
        wide = part.pivot_table(index=["episode", "skill"], columns=column, values=value,
                                aggfunc="sum", fill_value=0.0)
        x = wide.to_numpy(np.float64)
        x = x - x.mean(0)
        if scale:
            sd = x.std(0)
            x = x / np.where(sd > 0, sd, 1.0)
        _, sv, vt = np.linalg.svd(x, full_matrices=False)
        var = sv ** 2
        ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
        k = min(2, len(sv))
        proj = x @ vt[:k].T
        pts = wide.index.to_frame(index=False)
        pts.insert(0, "seed", seed)
        for c in range(2):
            pts[f"pc{c + 1}"] = proj[:, c] if c < k else 0.0
        points.append(pts)
        for c in range(k):
            loads.append({"seed": seed, "component": c + 1, "explained": ratio[c],
                          **dict(zip(wide.columns, vt[c], strict=True))})
    return pd.concat(points, ignore_index=True), pd.DataFrame(loads)


def usage(tr: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4.2e: ``seed, episode, skill, team_puck, choices`` — how often the high level
    chose each skill, when the agent's team had the puck (``team_puck`` True) or not."""
    ch = tr[tr["choice"]]
    counts = ch.groupby([*KEYS, "team_puck"]).size().rename("choices")
    episodes = tr[["seed", "episode"]].drop_duplicates()
    full = pd.MultiIndex.from_tuples(
        [(s, e, k, p) for s, e in episodes.itertuples(index=False) for k in _skills(tr)
         for p in (True, False)], names=[*KEYS, "team_puck"])
    return counts.reindex(full, fill_value=0).reset_index()


def timeline(tr: pd.DataFrame, episodes: int = 3) -> pd.DataFrame:
    """Fig. 4.2f: ``seed, episode, segment, agent, skill`` for the first ``episodes`` test
    episodes of each seed (the skill each agent chose at each high-level step)."""
    ch = tr[tr["choice"] & (tr["episode"] < episodes)]
    return ch[["seed", "episode", "segment", "agent", "skill"]].reset_index(drop=True)


def heatmap(tr: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4.2g: ``seed, skill, col, row, x, z, steps`` — primitive steps spent in each skill
    per unit cell of the rink (18 columns over x in [-9, 9], 36 rows over z in [-18, 18];
    ``x``, ``z`` the cell's centre), summed over the seed's test episodes and agents; every
    cell listed."""
    cols, rows = int(2 * HALF_X), int(2 * HALF_Z)
    col = np.clip(np.floor(tr["x"].to_numpy() + HALF_X), 0, cols - 1).astype(int)
    row = np.clip(np.floor(tr["z"].to_numpy() + HALF_Z), 0, rows - 1).astype(int)
    counts = pd.DataFrame({"seed": tr["seed"], "skill": tr["skill"], "col": col, "row": row}
                          ).groupby(["seed", "skill", "col", "row"]).size().rename("steps")
    full = pd.MultiIndex.from_product(
        [sorted(tr["seed"].unique()), _skills(tr), range(cols), range(rows)],
        names=["seed", "skill", "col", "row"])
    out = counts.reindex(full, fill_value=0).reset_index()
    out["x"] = out["col"] - HALF_X + 0.5
    out["z"] = out["row"] - HALF_Z + 0.5
    return out


def summary(table: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean and standard error over episodes of ``value`` per ``seed`` and ``by`` (e.g.
    ``["skill", "event"]``): ``seed, *by, mean, se, episodes``."""
    g = table.groupby(["seed", *by])[value]
    out = g.agg(mean="mean", sd="std", episodes="count").reset_index()
    out["se"] = (out.pop("sd").fillna(0.0) / np.sqrt(out["episodes"])).astype(float)
    return out[["seed", *by, "mean", "se", "episodes"]]


def extreme_skills(events: pd.DataFrame, seed: int) -> dict[str, int]:
    """The most offensive and the most defensive skill of ``seed``'s policy, measured: the
    skill with the most shots per episode, and the one with the most steals and
    interceptions per episode among the others (Table 4.1's fixed-skill rows; the Diss chose
    them by reading Fig. 4.2a)."""
    mean = events[events["seed"] == seed].groupby(["skill", "event"])["count"].mean(
        ).unstack("event")
    if mean.empty:
        raise ValueError(f"skill analysis: no test episodes of seed {seed}")
    offence = int(mean["shot"].idxmax())
    defence_score = (mean["steal"] + mean.get("interception", 0.0)).drop(offence)
    return {"offensive": offence, "defensive": int(defence_score.idxmax())}


def contrasts(tr: pd.DataFrame, level: float = 0.95, draws: int = 2000, seed: int = 0,
              min_episodes: int = 10, min_steps: int = 100) -> pd.DataFrame:
    """Event profiles of the skills compared pair by pair, per seed of the trace ``tr``.

    A skill's rate of an event is its count per 100 agent-steps executed in that skill,
    pooled over the seed's test episodes (so a skill used more often does not look busier).
    For each pair of skills ``a < b`` and each event: ``rate_a``, ``rate_b``, ``diff = rate_a
    - rate_b`` and a confidence interval ``lo``, ``hi``, simultaneous over the seed's pairs x
    events at ``level``: a bootstrap over whole test episodes (``draws`` resamples from
    ``seed``) gives each difference its standard error and the ``level`` quantile of the
    largest studentised deviation over all the contrasts (max-t) its width. ``distinct``:
    the interval excludes 0. Only skills executed in at least ``min_episodes`` episodes and
    ``min_steps`` agent-steps are compared (a rarely used skill's rate is too uncertain); the
    others are left out. The check is calibrated for about 100 test episodes per seed: in
    simulations of 4 skills that behave alike (9 events at rates 0.005-0.2 per step, about
    40 steps per skill and episode; ``benchmarks/skill_calibration.py``), some event of a seed was
    called distinct in 5 of 100 seeds at 100 episodes (the earlier Bonferroni-percentile
    interval: 10), 11 at 50 episodes and 21 at 30, against a nominal 5: with fewer episodes
    the bootstrap understates the spread of rare events' rates."""
    if not 0 < level < 1 or draws < 100 or min_episodes < 2 or min_steps < 1:
        raise ValueError(f"skill contrasts: level must be in (0, 1), draws >= 100, "
                         f"min_episodes >= 2 and min_steps >= 1, got {level}, {draws}, "
                         f"{min_episodes} and {min_steps}")
    events = [e for e in EVENTS if e in tr.columns and e not in ("win", "lose", "draw")]
    columns = ["seed", "skill_a", "skill_b", "event", "rate_a", "rate_b", "diff", "lo", "hi",
               "distinct"]
    rows = []
    for sd, part in tr.groupby("seed"):
        eps = sorted(part["episode"].unique())
        steps = part.groupby(["episode", "skill"]).size()
        per = steps.groupby("skill").agg(["size", "sum"])
        used = sorted(per.index[(per["size"] >= min_episodes) & (per["sum"] >= min_steps)])
        if len(used) < 2:
            continue
        full = pd.MultiIndex.from_product([eps, used], names=["episode", "skill"])
        c = part.groupby(["episode", "skill"])[events].sum().reindex(
            full, fill_value=0).to_numpy(np.float64).reshape(len(eps), -1)  # [E, K * V]
        n = steps.reindex(full, fill_value=0).to_numpy(np.float64).reshape(len(eps), -1)
        E, K, V = len(eps), len(used), len(events)
        weights = np.random.default_rng([seed, int(sd)]).multinomial(E, np.full(E, 1 / E),
                                                                      draws).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = 100 * c.sum(0).reshape(K, V) / n.sum(0)[:, None]  # [skills, events]
            boot = 100 * (weights @ c).reshape(draws, K, V) / (weights @ n)[..., None]
        pairs = [(i, j) for i in range(K) for j in range(i + 1, K)]
        diff = np.stack([rate[i] - rate[j] for i, j in pairs])  # [pairs, events]
        bdiff = np.stack([boot[:, i] - boot[:, j] for i, j in pairs], 1)  # [draws, pairs, ev]
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.nanstd(bdiff, 0, ddof=1)
            dev = np.abs(bdiff - diff) / np.where(se > 0, se, np.nan)
        worst = np.nanmax(dev.reshape(draws, -1), 1, initial=0.0)
        crit = float(np.quantile(worst, level))
        lo, hi = diff - crit * se, diff + crit * se
        for p, (i, j) in enumerate(pairs):
            for e, name in enumerate(events):
                rows.append({"seed": sd, "skill_a": used[i], "skill_b": used[j],
                             "event": name, "rate_a": rate[i, e], "rate_b": rate[j, e],
                             "diff": diff[p, e], "lo": lo[p, e], "hi": hi[p, e],
                             "distinct": bool(lo[p, e] > 0 or hi[p, e] < 0)})
    return pd.DataFrame(rows, columns=columns)


def distinct_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """From :func:`contrasts`: per seed and pair of skills, the events where ``skill_a`` is
    clearly higher (``a_more``) and where ``skill_b`` is (``b_more``), and ``opposite``: each
    is clearly higher on some event (different kinds of play, e.g. one shoots, the other
    steals, rather than one skill doing more of everything)."""
    out = []
    for (sd, a, b), part in table.groupby(["seed", "skill_a", "skill_b"]):
        more_a = part.loc[part["distinct"] & (part["diff"] > 0), "event"].tolist()
        more_b = part.loc[part["distinct"] & (part["diff"] < 0), "event"].tolist()
        out.append({"seed": sd, "skill_a": a, "skill_b": b, "a_more": ", ".join(more_a),
                    "b_more": ", ".join(more_b), "opposite": bool(more_a and more_b)})
    return pd.DataFrame(out, columns=["seed", "skill_a", "skill_b", "a_more", "b_more",
                                      "opposite"])
