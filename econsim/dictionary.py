"""The data dictionary: unit and meaning of every column of every table econsim writes,
defined once, and the ``mechanism`` label of a tax mechanism.

Tables (the keys of :data:`TABLES`)

=================  ==========================================================================
``periods``        one row per (run or what-if) x seed x episode x tax period x agent (GTB):
                   a run's ``periods.parquet`` (``analysis.tidy``), ``WhatIfResult.periods``
``episodes``       one row per (run or what-if) x seed x episode: ``analysis.episode_table``,
                   ``WhatIfResult.episodes``
``steps``          one row per what-if x seed x episode x step x agent (``WhatIfResult.steps``)
``world``          one row per what-if x seed x episode x step (``WhatIfResult.world``)
``run_episodes``   a run's ``episodes.parquet``: one row per seed x training window or
                   evaluation, averaged over that row's episodes (``analysis.tidy(...,
                   "episodes")``)
``run_agents``     a run's ``agents.parquet``: one row per seed x window or evaluation x agent
=================  ==========================================================================

Conventions, the same in every table:

* ``episode``, ``period``, ``agent`` and ``seed`` are indices starting at 0; ``step`` counts
  the steps taken (1 = after the first step).
* ``productivity`` is total coin, ``equality`` is 1 - normalised Gini of coin (a share in
  [0, 1]), ``welfare`` is productivity x equality at one moment (unit coin x share);
  ``welfare_sum`` adds that product over every step of the episode (or the period): the
  Diss's social-welfare objective (unit coin x share x steps, about 100x a single value
  for a 100-step episode); ``welfare_final`` is the product at the episode's last step.
* ``skill`` is build pay in coin per house built (10-30 with the default ``build_payment``
  10 and the skill multiplier capped at 3), in every table.
* ``mechanism`` is a label with the parameters: ``flat(rate=0.3)``, ``us_federal``,
  ``custom(rates=[...], thresholds=[...])``; ``mechanism_name`` is the bare name and each
  parameter has its own column ``mechanism_<parameter>`` (lists as JSON text).

A game documents its own columns (its per-agent step events, episode metrics and ``describe``
attributes) in its module, as the class attribute ``columns`` read through the game registry
(``econsim.core.registry.columns_of``); the columns every game shares, and the economy's,
are defined here. ``econsim.envs.gtb.tables`` keeps its column list; a test checks every
column it writes is described here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

Entry = tuple[str, str]  # (unit, meaning)

#: old column names of stored runs -> current names (:func:`current_names` renames them)
RENAMED = {"social_welfare": "welfare_sum", "final_welfare": "welfare_final"}

LEARNED_PLANNERS = {"metagrad": "metagrad", "dual-rl": "dual_rl"}  # algorithm prefix -> label
WELFARE_UNIT = "coin x share"
WELFARE_SUM_UNIT = "coin x share x steps"

# --------------------------------------------------------------------------- shared entries

META: dict[str, Entry] = {
    "run_id": ("id", "run folder name (runs/<run_id>/)"),
    "scenario": ("name", "scenario name (econsim/scenarios/<name>.toml or the run's "
                 "scenario.toml)"),
    "env": ("name", "game (econsim.envs), e.g. gtb"),
    "algorithm": ("name", "training algorithm of the agents (and planner), e.g. ppo"),
    "mechanism": ("label", "tax mechanism with its parameters, e.g. flat(rate=0.3), "
                  "us_federal, free_market, saez, custom(rates=[...], thresholds=[...]); "
                  "metagrad / dual_rl for a learned planner; none without one"),
    "mechanism_name": ("name", "the mechanism's name without parameters (free_market, flat, "
                       "us_federal, saez, custom, metagrad, dual_rl, none)"),
    "sweep": ("id", "sweep id for runs made by `econsim sweep` (empty otherwise)"),
    "agents": ("label", "who played the what-if: scripted workers, random actions (a null "
               "model), idle, or trained agents of a run with their behaviour held fixed or "
               "re-learned under each mechanism"),
    "seed": ("index", "random seed of the replica; the natural cluster for standard errors"),
    "phase": ("name", "'eval' (greedy evaluation) or 'train' (a training window)"),
    "iteration": ("iterations", "training iteration at which the evaluation ran"),
    "episode": ("index", "episode within the evaluation or the what-if (0-based)"),
}

_WORLD: dict[str, Entry] = {
    "productivity": ("coin", "total coin of all agents"),
    "equality": ("share", "1 - normalised Gini of coin (1 = equal, 0 = one agent has all)"),
    "welfare": (WELFARE_UNIT, "productivity x equality"),
}

RATES: dict[str, Entry] = {
    "top_rate": ("rate", "marginal rate of the highest bracket (rate_{K-1})"),
    "mean_rate": ("rate", "unweighted mean of the bracket rates rate_0..rate_{K-1}"),
}

_EPISODE_RATES: dict[str, Entry] = {
    "top_rate": ("rate", "marginal rate of the highest bracket, mean over the tax periods"),
    "mean_rate": ("rate", "unweighted mean of the bracket rates, mean over the tax periods"),
}

# --------------------------------------------------------------------------- tables

PERIODS: dict[str, Entry] = {
    **META,
    "period": ("index", "tax period of the episode (0-based; 10 steps each by default)"),
    "agent": ("index", "agent (player) index (0-based)"),
    "skill": ("coin/house", "build pay: coin earned per house built (skill multiplier x "
              "build_payment)"),
    "pre_tax_income": ("coin", "coin earned in the period before tax"),
    "tax": ("coin", "tax paid at the end of the period (eq. 6.7, capped at coin held)"),
    "transfer": ("coin", "equal share of the period's tax revenue received (eq. 6.8)"),
    "post_tax_income": ("coin", "pre_tax_income - tax + transfer"),
    "marginal_rate": ("rate", "marginal tax rate at the agent's pre-tax income"),
    "coin": ("coin", "coin held at the end of the period (available + escrow)"),
    "labor": ("labor", "cumulative labor at the end of the period"),
    "utility": ("util", "crra(coin) - labor weight x labor at the end of the period (eq. C.17)"),
    "wood_gathered": ("units", "wood collected in the period"),
    "stone_gathered": ("units", "stone collected in the period"),
    "houses_built": ("houses", "houses built in the period"),
    "build_income": ("coin", "coin earned by building in the period"),
    "trade_income": ("coin", "net coin from market trades in the period"),
    "productivity": ("coin", "total coin of all agents at the end of the period (world)"),
    "equality": ("share", "1 - normalised Gini of coin at the end of the period (world)"),
    "welfare": (WELFARE_UNIT, "productivity x equality at the end of the period (world)"),
    "welfare_sum": (WELFARE_SUM_UNIT, "sum over the period's steps of productivity x "
                    "equality after each step (world; summed over the periods it gives the "
                    "episode's welfare_sum)"),
    **{k: (u, m.replace("(rate_{K-1})", "in force in the period (rate_{K-1})"))
       for k, (u, m) in RATES.items()},
}

EPISODES: dict[str, Entry] = {
    **META,
    "steps": ("steps", "steps played in the episode"),
    "collective_return": ("reward", "sum over agents and steps of the game's reward"),
    "periods": ("periods", "tax periods in the episode"),
    "welfare_sum": (WELFARE_SUM_UNIT, "sum over the episode's steps of productivity x "
                    "equality after each step: the Diss's social welfare (§6.3.1); 100 steps "
                    "by default, so about 100x welfare_final"),
    "welfare_final": (WELFARE_UNIT, "productivity x equality at the episode's end"),
    "productivity": ("coin", "total coin of all agents at the episode's end"),
    "equality": ("share", "1 - normalised Gini of coin at the episode's end"),
    "tax_revenue": ("coin", "tax collected from all agents over the episode (all of it is "
                    "redistributed equally)"),
    "pre_tax_income": ("coin", "income earned by all agents over the episode before tax"),
    "houses_built": ("houses", "houses built by all agents over the episode"),
    "wood_gathered": ("units", "wood collected by all agents over the episode"),
    "stone_gathered": ("units", "stone collected by all agents over the episode"),
    "trade_income": ("coin", "net coin from market trades, all agents (sums to about 0)"),
    "trade_volume": ("units", "units of wood and stone bought and sold in the episode"),
    "labor": ("labor", "labor of all agents over the episode"),
    "mean_utility": ("util", "mean over agents of utility at the episode's end"),
    "utilitarian": ("util", "utilitarian welfare: sum over agents of utility at the episode's "
                    "end"),
    "utilitarian_mean": ("util", "mean over agents of utility at the episode's end (the "
                         "utilitarian welfare per agent)"),
    "atkinson": ("share", "Atkinson inequality index of final coin at the inequality "
                 "aversion atkinson_epsilon (0 = equal, 1 = one agent has all); "
                 "econsim.metrics.atkinson"),
    "atkinson_income": ("coin", "Atkinson equally distributed equivalent coin at the aversion "
                        "atkinson_epsilon (at 1: the geometric mean of final coin)"),
    "atkinson_epsilon": ("aversion", "inequality aversion ε of atkinson and atkinson_income "
                         "(1 unless chosen in the what-if)"),
    "nash": ("log coin", "Nash welfare: sum over agents of log final coin (-inf if an agent "
             "has none)"),
    "rawlsian": ("util", "Rawlsian (maximin) welfare: the lowest agent utility at the "
                 "episode's end"),
    **_EPISODE_RATES,
}

STEPS: dict[str, Entry] = {
    "mechanism": META["mechanism"], "mechanism_name": META["mechanism_name"],
    "agents": META["agents"],
    "seed": ("index", "seed of the model (all mechanisms play the same seeds)"),
    "episode": META["episode"],
    "step": ("steps", "steps taken in the episode (1 = after the first step)"),
    "agent": ("index", "agent (player) index (0-based)"),
    "action": ("index", "action chosen this step (the game's action list)"),
    "reward": ("util", "the game's reward of the step (GTB: change in utility)"),
    "incentive_received": ("reward", "incentives received this step (LIO, designers)"),
    "incentive_given": ("reward", "incentives paid this step"),
    "total_reward": ("reward", "reward + received - given"),
    "return_so_far": ("reward", "sum of the agent's rewards this episode"),
    "row": ("cell", "map row after the step"),
    "col": ("cell", "map column after the step"),
    "coin": ("coin", "coin held after the step (available + escrow)"),
    "wood": ("units", "wood held after the step (available + escrow)"),
    "stone": ("units", "stone held after the step (available + escrow)"),
    "labor": ("labor", "cumulative labor this episode"),
    "skill": PERIODS["skill"],
    "gather_skill": ("probability", "chance of a bonus unit when collecting"),
    "utility": ("util", "crra(coin) - labor weight x labor after the step"),
    "houses": ("houses", "houses the agent has built this episode"),
    "income": ("coin", "income this period so far (pre-tax; at a period end the taxed income)"),
    "tax": ("coin", "tax paid this step (period ends only)"),
    "transfer": ("coin", "redistribution received this step (period ends only)"),
    "built": ("houses", "1 if the agent built a house this step"),
    "build_income": ("coin", "coin earned by building this step"),
    "gathered_wood": ("units", "wood collected this step"),
    "gathered_stone": ("units", "stone collected this step"),
    "trade_income": ("coin", "net coin from trades this step"),
    "trade_volume": ("units", "units bought and sold this step"),
}

WORLD: dict[str, Entry] = {
    "mechanism": META["mechanism"], "mechanism_name": META["mechanism_name"],
    "agents": META["agents"],
    "seed": STEPS["seed"], "episode": META["episode"], "step": STEPS["step"],
    "collective_reward": ("reward", "sum over agents of the step's reward"),
    "collective_return": ("reward", "sum over agents and the episode's steps so far"),
    "incentives_paid": ("reward", "incentives paid this step"),
    **{k: (u, f"{m} after the step") for k, (u, m) in _WORLD.items()},
    "tax_revenue": ("coin", "tax collected this step (period ends only)"),
}

_ROW = "mean over the row's episodes"
RUN_EPISODES: dict[str, Entry] = {
    **META,
    "episodes": ("episodes", "episodes averaged in the row (training: the window's episodes; "
                 "evaluation: eval_episodes)"),
    "epsilon": ("probability", "exploration floor in force (0 in evaluations)"),
    "collective": ("reward", f"sum over agents of the episode's return, {_ROW} (with a "
                   "central designer: extrinsic minus incentives)"),
    "length": ("steps", f"episode length, {_ROW}"),
    "extrinsic": ("reward", f"sum over agents of the game's reward per episode, {_ROW}"),
    "incentives": ("reward", f"incentives the designer paid per episode, {_ROW}"),
    "productivity": ("coin", f"total coin at the episode's end, {_ROW}"),
    "equality": ("share", f"1 - normalised Gini of coin at the episode's end, {_ROW}"),
    "welfare_sum": (WELFARE_SUM_UNIT, "sum over the episode's steps of productivity x "
                    f"equality (the Diss's social welfare), {_ROW}"),
    "welfare_final": (WELFARE_UNIT, f"productivity x equality at the episode's end, {_ROW}"),
    "tax_revenue": ("coin", f"tax collected per episode, {_ROW}"),
    "trade_volume": ("units", f"units bought and sold per episode, {_ROW}"),
    "designer_return": ("reward", f"MetaGrad tax designer: sum of its reward per episode, {_ROW}"),
    "tax_cap": ("rate", "dual-RL planner: cap on the tax rates in force (curriculum)"),
    "planner_reward": (WELFARE_SUM_UNIT, f"dual-RL planner: its reward per episode, {_ROW}"),
    "policy_loss": ("loss", "agents' policy loss, mean over the window's updates (training)"),
    "value_loss": ("loss", "agents' value (critic) loss, mean over the window's updates"),
    "entropy": ("nats", "agents' policy entropy, mean over the window's updates"),
    "designer_loss": ("loss", "designer's outer loss, mean over the window's updates"),
    "designer_value_loss": ("loss", "designer's critic loss, mean over the window's updates"),
    "meta_grad_norm": ("norm", "norm of the designer's meta-gradient, window mean"),
    "planner_policy_loss": ("loss", "dual-RL planner's policy loss, window mean"),
    "planner_value_loss": ("loss", "dual-RL planner's value loss, window mean"),
    "planner_entropy": ("nats", "dual-RL planner's policy entropy, window mean"),
    "team_return": ("reward", f"the team's reward per episode (a team game: the shared reward "
                    f"once), {_ROW}"),
    "win_rate": ("share", "share of the row's episodes the learning team won"),
    "lose_rate": ("share", "share of the row's episodes the learning team lost"),
    "draw_rate": ("share", "share of the row's episodes that ended in a draw"),
    "alpha": ("weight", "HSD: weight of the team reward in the low level's reward (eq. 4.3), "
              "in force after the row's iteration"),
    "decoder_accuracy": ("share", "HSD: share of the row's complete skill segments whose "
                         "skill the decoder names (argmax)"),
    "decoder_ce": ("nats", "HSD: the decoder's cross entropy on the row's complete segments"),
    "intrinsic": ("probability", "HSD: mean decoder probability of the true skill over the "
                  "row's complete segments (the intrinsic reward)"),
}

RUN_AGENTS: dict[str, Entry] = {
    **META,
    "agent": ("index", "agent (player) index (0-based)"),
    "kind": ("name", "the agent's learner (e.g. lio, pg)"),
    "return": ("reward", f"the agent's extrinsic return per episode, {_ROW}"),
    "received": ("reward", f"incentives received per episode, {_ROW}"),
    "given": ("reward", f"incentives given per episode, {_ROW}"),
    "coin": ("coin", f"coin held at the episode's end, {_ROW}"),
    "labor": ("labor", f"labor at the episode's end, {_ROW}"),
    "utility": ("util", f"utility at the episode's end, {_ROW}"),
    "skill": PERIODS["skill"],
    "houses": ("houses", f"houses built per episode, {_ROW}"),
    "wood_gathered": ("units", f"wood collected per episode, {_ROW}"),
    "stone_gathered": ("units", f"stone collected per episode, {_ROW}"),
    "tax_paid": ("coin", f"tax paid per episode, {_ROW}"),
    "transfer": ("coin", f"redistribution received per episode, {_ROW}"),
    "trade_income": ("coin", f"net coin from trades per episode, {_ROW}"),
}

#: the dictionary table of each stored table of a run (``store.TABLES``) where they differ
RUN_KINDS = {"episodes": "run_episodes", "agents": "run_agents"}

TABLES: dict[str, dict[str, Entry]] = {
    "periods": PERIODS, "episodes": EPISODES, "steps": STEPS, "world": WORLD,
    "run_episodes": RUN_EPISODES, "run_agents": RUN_AGENTS,
}

_SECTIONS = ("env", "algorithm", "train", "eval")

# --------------------------------------------------------------------------- README

#: The README's "One vocabulary" table: the columns every table shares, as ``(columns,
#: meaning across the tables)``. Their unit is not written here but looked up in
#: :data:`TABLES` (:func:`vocabulary`), and the README's table is generated from this list
#: (``python -m econsim.dictionary --readme README.md``; a test checks they agree).
VOCABULARY: list[tuple[tuple[str, ...], str]] = [
    (("productivity",), "total coin of all agents (at the period's or the episode's end)"),
    (("equality",), "1 - normalised Gini of coin"),
    (("welfare",), "productivity x equality at one moment (a period's end, a step)"),
    (("welfare_sum",), "productivity x equality summed over the episode's (or period's) "
                       "steps: the Diss's social welfare, about 100 x `welfare_final`"),
    (("welfare_final",), "productivity x equality at the episode's end"),
    (("utilitarian", "utilitarian_mean"), "sum (mean) over agents of utility at the "
                                          "episode's end"),
    (("rawlsian",), "the lowest agent utility at the episode's end (maximin)"),
    (("atkinson",), "Atkinson index of final coin at inequality aversion "
                    "`atkinson_epsilon` (0 = equal)"),
    (("atkinson_income",), "the equal coin per agent worth as much as the actual "
                           "distribution at that aversion (Atkinson's equally distributed "
                           "equivalent)"),
    (("atkinson_epsilon",), "the inequality aversion ε of the two Atkinson columns (1 unless "
                            "chosen in the what-if)"),
    (("nash",), "sum over agents of log final coin (-inf if an agent has none)"),
    (("skill",), "build pay per house (skill multiplier x `build_payment`), 10-30"),
    (("episode", "period", "agent", "seed"), "counted from 0 in runs and what-ifs alike"),
    (("mechanism",), "the mechanism with its parameters: `flat(rate=0.3)`, `us_federal`, "
                     "`custom(rates=[...], thresholds=[...])`; `metagrad` / `dual_rl` for a "
                     "learned planner; `none`"),
    (("mechanism_name",), "the bare name of the mechanism (`flat`, `us_federal`, ...)"),
    (("mechanism_<parameter>",), "one column per parameter of the mechanism "
                                 "(`mechanism_rate`; lists as JSON text)"),
]
README_BEGIN = ("<!-- data dictionary: generated from econsim/dictionary.py by "
                "`python -m econsim.dictionary --readme README.md`; edit it there -->")
README_END = "<!-- end of the generated data dictionary -->"


def _unit(column: str) -> str:
    """The unit of ``column`` in every table that has it; ValueError if they differ."""
    probe = column.replace("<parameter>", "rate")  # a pattern column: one example
    units = {t: describe(t, probe)[0] for t, cols in TABLES.items()
             if probe in cols or _pattern(t, probe)}
    if len(set(units.values())) != 1:
        raise ValueError(f"column {column!r}: units differ between tables ({units})"
                         if units else f"column {column!r} is in no table")
    return next(iter(units.values()))


def vocabulary() -> pd.DataFrame:
    """``columns, unit, meaning`` of :data:`VOCABULARY`, units from :data:`TABLES`."""
    rows = []
    for columns, meaning in VOCABULARY:
        units = {_unit(c) for c in columns}
        if len(units) != 1:
            raise ValueError(f"columns {', '.join(columns)} share a row but not a unit")
        rows.append({"columns": ", ".join(f"`{c}`" for c in columns),
                     "unit": units.pop(), "meaning": meaning})
    return pd.DataFrame(rows, columns=["columns", "unit", "meaning"])


def readme_table() -> str:
    """The README's data-dictionary block (markers included), as Markdown."""
    lines = [README_BEGIN, "", "| column | unit | meaning |", "|---|---|---|"]
    lines += [f"| {r.columns} | {r.unit} | {r.meaning} |" for r in vocabulary().itertuples()]
    return "\n".join([*lines, "", README_END])


def update_readme(path: str | Path) -> bool:
    """Replace the data-dictionary block of the README at ``path``; True if it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{path}: no data-dictionary block (the markers {README_BEGIN!r} "
                         f"and {README_END!r})")
    new = text[:begin] + readme_table() + text[end + len(README_END):]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def _pattern(table: str, column: str) -> Entry | None:
    """Columns named by a pattern: rates per bracket, action counts, parameters."""
    if m := re.fullmatch(r"rate_(\d+)", column):
        where = " in force" if table in ("periods", "world") else ""
        return ("rate", f"marginal tax rate of bracket {m.group(1)}{where} (0 = lowest)")
    if m := re.fullmatch(r"mechanism_(\w+)", column):
        return ("as set", f"parameter {m.group(1)} of the mechanism (see mechanism)")
    if m := re.fullmatch(rf"({'|'.join(_SECTIONS)})_(\w+)", column):
        return ("as set", f"swept scenario parameter {m.group(1)}.{m.group(2)} of the run")
    if m := re.fullmatch(r"set_(\w+)", column):
        return ("as set", f"swept scenario value {m.group(1)} of the run (JSON text)")
    if m := re.fullmatch(r"n_(\w+)", column):
        return ("steps", f"steps the agent chose action {m.group(1)} per episode, {_ROW}")
    if m := re.fullmatch(r"skill_(\d+)", column):
        return ("steps", f"HSD: steps the agent spent in latent skill {m.group(1)} per "
                f"episode, {_ROW}")
    if m := re.fullmatch(r"offer_(\w+)", column):
        return ("reward", f"designer's mean incentive offered for {m.group(1)} per step, {_ROW}")
    return game_column(table, column)


def game_column(table: str, column: str) -> Entry | None:
    """A column a registered game documents (``columns`` of its class), prefixed with the
    game's name; in the tables of a run, with the row's averaging."""
    from econsim import envs  # the registry; light (numpy and pydantic)
    from econsim.core.registry import columns_of

    found = []
    for name in envs.names():
        for col, (unit, meaning) in columns_of(envs.game_class(name)).get(table, {}).items():
            pattern = re.escape(col).replace(r"\{k\}", r"(?P<k>\d+)")
            if m := re.fullmatch(pattern, column):
                text = meaning.replace("{k}", m.groupdict().get("k") or "k")
                found.append((name, unit, text))
    if not found:
        return None
    by_text: dict[tuple[str, str], list[str]] = {}  # games documenting it alike share a line
    for game, unit, text in found:
        by_text.setdefault((unit, text), []).append(game)
    units = sorted({u for u, _ in by_text})
    suffix = f", {_ROW}" if table.startswith("run_") else ""
    return (" or ".join(units), "; ".join(f"{', '.join(games)}: {text}"
                                          for (_, text), games in by_text.items()) + suffix)


def current_names(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the old column names of :data:`RENAMED` replaced by the current ones
    (where the current one is not there already): the one place a table of a run made
    before the rename is read as today's (``analysis.tidy``, ``analysis.load`` and the
    app's pages go through it)."""
    renames = {old: new for old, new in RENAMED.items() if old in df and new not in df}
    return df.rename(columns=renames) if renames else df


def describe(table: str, column: str) -> Entry:
    """``(unit, meaning)`` of ``column`` in ``table``; ``("", "")`` if unknown."""
    if table not in TABLES:
        raise ValueError(f"table {table!r} is not allowed (allowed: {', '.join(TABLES)})")
    column = str(column)
    if column in RENAMED and column not in TABLES[table]:  # a run made before the rename
        unit, meaning = describe(table, RENAMED[column])
        return (unit, f"old name of {RENAMED[column]}: {meaning}") if meaning else ("", "")
    return TABLES[table].get(column) or _pattern(table, column) or ("", "")


def data_dictionary(table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """``column, unit, meaning`` of ``table``: every column it may have, or exactly
    ``columns`` in that order (e.g. ``df.columns`` of an export)."""
    if table not in TABLES:
        raise ValueError(f"table {table!r} is not allowed (allowed: {', '.join(TABLES)})")
    rows = [{"column": str(c), **dict(zip(("unit", "meaning"), describe(table, c),
                                          strict=True))}
            for c in (columns if columns is not None else TABLES[table])]
    return pd.DataFrame(rows, columns=["column", "unit", "meaning"])


def tables_dictionary(tables: Mapping[str, pd.DataFrame],
                      kinds: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``table, column, unit, meaning`` of the columns of several tables; ``kinds`` maps a
    table's name to its dictionary table when they differ (e.g. ``{"episodes":
    "run_episodes"}`` for a run's ``episodes.parquet``)."""
    parts = [data_dictionary((kinds or {}).get(name, name), list(df.columns))
             .assign(table=name) for name, df in tables.items()]
    cols = ["table", "column", "unit", "meaning"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def write(path: str | Path, tables: Mapping[str, pd.DataFrame],
          kinds: Mapping[str, str] | None = None) -> Path:
    """Write :func:`tables_dictionary` as CSV to ``path``; returns the path."""
    from econsim.files import write_table

    path = Path(path)
    write_table(path, tables_dictionary(tables, kinds))
    return path


# --------------------------------------------------------------------------- mechanisms


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return str(value)


def mechanism_label(spec: Mapping[str, Any] | str | None) -> str:
    """A stable, readable label: ``{"name": "flat", "rate": 0.2}`` -> ``flat(rate=0.2)``,
    ``"us_federal"`` -> ``us_federal``, ``None`` -> ``none``; parameters sorted by name;
    a ``label`` key (a what-if's own name for it) wins."""
    if spec is None:
        return "none"
    if isinstance(spec, str):
        return spec
    if spec.get("label"):
        return str(spec["label"])
    params = {k: v for k, v in spec.items() if k not in ("name", "label")}
    inner = ", ".join(f"{k}={_value_text(params[k])}" for k in sorted(params))
    return f"{spec.get('name', '?')}({inner})" if inner else str(spec.get("name", "?"))


def mechanism_columns(spec: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """``mechanism``, ``mechanism_name`` and one ``mechanism_<parameter>`` per parameter
    (numbers as numbers, lists and tables as JSON text)."""
    if spec is None or isinstance(spec, str):
        name = spec or "none"
        return {"mechanism": name, "mechanism_name": name}
    out: dict[str, Any] = {"mechanism": mechanism_label(spec),
                           "mechanism_name": str(spec.get("name", "?"))}
    for k in sorted(k for k in spec if k not in ("name", "label")):
        v = spec[k]
        out[f"mechanism_{k}"] = v if isinstance(v, int | float | str | bool) else json.dumps(v)
    return out


def scenario_mechanism(spec: Mapping[str, Any]) -> dict[str, Any] | str:
    """The mechanism of a resolved scenario dict: its ``[mechanism]`` table, a learned
    planner's label (``metagrad`` / ``dual_rl``), or ``"none"``."""
    mech = spec.get("mechanism")
    if mech:
        return dict(mech)
    alg = str((spec.get("algorithm") or {}).get("name", ""))
    for prefix, label in LEARNED_PLANNERS.items():
        if alg.startswith(prefix):
            return label
    return "none"


if __name__ == "__main__":  # python -m econsim.dictionary [--readme README.md]
    import sys

    if sys.argv[1:2] == ["--readme"] and len(sys.argv) == 3:
        print(f"{sys.argv[2]}: {'updated' if update_readme(sys.argv[2]) else 'up to date'}")
    elif len(sys.argv) == 1:
        print(readme_table())
    else:
        sys.exit("usage: python -m econsim.dictionary [--readme README.md]")
