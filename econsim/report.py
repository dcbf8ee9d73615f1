"""One-file HTML reports of a what-if and of an experiment: what was run, the results with
their uncertainty, the plots, and how to run it again.

:func:`whatif_report` returns one self-contained HTML page (no scripts, no links to fetch:
the plots are PNG images inside the file, drawn with matplotlib), holding the scenario (its
TOML), the mechanisms, agents and seeds; per outcome the mean and 95% confidence interval
across seeds, and the paired differences to a baseline mechanism
(``econsim.uncertainty``); the plots (outcomes with their intervals, the
equality-productivity trade-off, Lorenz curves, income before and after redistribution, tax
incidence by income decile, the tax schedules T(z) and their marginal rates); the versions of
econsim, Python and the libraries; and the Python that reruns it
(``WhatIfResult.rerun_code``). :func:`experiment_report` does the same for a grid of
parameter values (``econsim.sweep``): per combination and outcome the mean and interval across
seeds, paired differences to a baseline combination, and the ``econsim sweep`` command that
reruns it. Every text from the result is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from econsim import distribution

__all__ = ["whatif_report", "experiment_report", "versions"]

LIBRARIES = ("numpy", "pandas", "torch", "mesa", "statsmodels", "streamlit")
OUTCOMES = ("welfare_sum", "productivity", "equality", "utilitarian", "atkinson", "nash",
            "rawlsian", "tax_revenue", "houses_built", "collective_return")


def versions() -> dict[str, str]:
    """econsim, Python and the main libraries, as installed."""
    out = {"econsim": _version("econsim"), "python": platform.python_version()}
    out.update({lib: _version(lib) for lib in LIBRARIES})
    return out


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, digits: int = 3) -> str:
    return df.round(digits).to_html(index=False, border=0, classes="t", escape=True,
                                    na_rep="")


def _ci_figure(conf: pd.DataFrame, by: str, shown: int = 6) -> str:
    """Per outcome (up to ``shown``) a panel: each ``by`` value's mean and its 95% interval
    (``econsim.uncertainty.confidence`` table), as an embedded PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outcomes = list(dict.fromkeys(conf["outcome"]))[:shown]
    fig, axes = plt.subplots(1, len(outcomes), figsize=(3.2 * len(outcomes), 0.8 + 0.45 * max(
        3, conf[by].nunique())), squeeze=False)
    for ax, outcome in zip(axes[0], outcomes, strict=True):
        part = conf[conf["outcome"] == outcome]
        y = np.arange(len(part))
        ok = np.isfinite(part["ci_low"]) & np.isfinite(part["ci_high"])
        ax.errorbar(part["mean"], y, xerr=np.where(ok, [part["mean"] - part["ci_low"],
                                                        part["ci_high"] - part["mean"]], 0),
                    fmt="o", capsize=3)
        ax.set_yticks(y, [str(v) for v in part[by]])
        ax.set_title(outcome, fontsize=10)
        ax.grid(alpha=0.3)
    return _png(fig)


def _plots(res: Any, conf: pd.DataFrame) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    if not conf.empty:
        out.append(("Outcomes: mean and 95% confidence interval across seeds",
                    _ci_figure(conf, "mechanism")))
    if {"productivity", "equality"} <= set(res.episodes.columns):
        pts = distribution.tradeoff(res.episodes)
        fig, ax = plt.subplots(figsize=(6, 4))
        for m, part in pts.groupby("mechanism", sort=False):
            ax.scatter(part["productivity"], part["equality"], label=m)
        front = pts[pts["frontier"]].sort_values("productivity")
        ax.plot(front["productivity"], front["equality"], color="black", lw=1)
        for _, curve in distribution.iso_welfare_of(pts).groupby("welfare"):
            ax.plot(curve["productivity"], curve["equality"], color="#999", ls="--", lw=0.8)
        ax.set_xlabel("productivity (total coin)")
        ax.set_ylabel("equality (1 - Gini)")
        ax.legend(fontsize=8)
        out.append(("The equality-productivity trade-off (a point per mechanism and seed; "
                    "black: frontier; dashed: equal welfare)", _png(fig)))
    if not res.periods.empty:
        lz = distribution.lorenz(res.periods)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([0, 1], [0, 1], color="#bbb")
        for (m, kind), part in lz.groupby(["mechanism", "income"], sort=False):
            ax.plot(part["people"], part["share"], ls="--" if kind == "pre_tax" else "-",
                    label=f"{m}, {'before' if kind == 'pre_tax' else 'after'} tax "
                          f"(Gini {part['gini'].iloc[0]:.2f})")
        ax.set_xlabel("poorest share of agent-episodes")
        ax.set_ylabel("share of all income")
        ax.legend(fontsize=7)
        out.append(("Lorenz curves of income per episode", _png(fig)))
    if not res.periods.empty:
        inc = distribution.incomes(res.periods)
        groups = list(dict.fromkeys(inc["mechanism"]))
        fig, axes = plt.subplots(1, len(groups), figsize=(3.4 * len(groups), 3.0),
                                 squeeze=False, sharey=True)
        bins = np.histogram_bin_edges(inc[["pre_tax", "post_tax"]].to_numpy().ravel(), 25)
        for ax, m in zip(axes[0], groups, strict=True):
            part = inc[inc["mechanism"] == m]
            ax.hist(part["pre_tax"], bins, alpha=0.55, color="#d62728", label="before tax")
            ax.hist(part["post_tax"], bins, alpha=0.55, color="#2ca02c",
                    label="after tax and transfer")
            ax.set_title(m, fontsize=9)
            ax.set_xlabel("income per episode (coin)")
        axes[0][0].set_ylabel("agent-episodes")
        axes[0][0].legend(fontsize=7)
        out.append(("Income per agent and episode before and after redistribution",
                    _png(fig)))
        table = distribution.incidence(res.periods, "mechanism", "decile")
        rates = {"average_rate": "average rate (tax / income)",
                 "net_rate": "net rate ((tax - transfer) / income)",
                 "marginal_rate": "marginal rate faced"}
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), squeeze=False)
        for ax, (col, name) in zip(axes[0], rates.items(), strict=True):
            for m, part in table.groupby("mechanism", sort=False):
                ax.plot(part["group"], part[col], marker="o", label=m)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("pre-tax income decile")
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        axes[0][0].legend(fontsize=7)
        out.append(("Tax incidence by income decile", _png(fig)))
    if not res.schedules.empty:
        curve = res.tax_curve()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
        for m, part in curve.groupby("mechanism", sort=False):
            axes[0][0].plot(part["income"], part["tax"], label=m)
            axes[0][1].plot(part["income"], part["marginal_rate"], label=m)
        for ax, ylabel in zip(axes[0], ("tax due T(z) (coin)", "marginal rate"), strict=True):
            ax.set_xlabel("pre-tax income z (coin per period)")
            ax.set_ylabel(ylabel)
            ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        axes[0][1].yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        axes[0][0].legend(fontsize=8)
        out.append(("Tax schedules T(z) and marginal rates", _png(fig)))
    return out


def whatif_report(res: Any, baseline: str | None = None, title: str | None = None) -> str:
    """The HTML report of a ``whatif.WhatIfResult`` (module docstring); ``baseline``: the
    mechanism the paired differences are taken against (default: the first)."""
    if res.episodes.empty:
        raise ValueError("report: the what-if has no finished episode")
    baseline = baseline or res.mechanisms[0]
    if baseline not in res.mechanisms:
        raise ValueError(f"report: baseline {baseline!r} is not among the mechanisms "
                         f"({', '.join(res.mechanisms)})")
    outcomes = [o for o in OUTCOMES if o in res.episodes.columns]
    conf = res.confidence(outcomes)
    diff = res.differences(baseline, outcomes) if len(res.mechanisms) > 1 else None
    e = html.escape
    agents = res.agents_text()
    parts = [
        f"<h1>{e(title or f'What-if of {res.scenario}')}</h1>",
        f"<p class='meta'>econsim report, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<h2>What was run</h2><ul>",
        f"<li>Scenario: <b>{e(res.scenario)}</b> (game {e(res.env)})</li>",
        f"<li>Mechanisms: {e(', '.join(res.mechanisms))}</li>",
        f"<li>Agents: {e(agents)}</li>",
        f"<li>Seeds: {e(', '.join(map(str, res.seeds)))}; {res.episodes_requested} "
        f"episode(s) per seed and mechanism; {res.episodes_done} episodes played"
        f"{' (cancelled)' if res.cancelled else ''}</li></ul>",
        "<h2>Results</h2><p>Seeds are the unit of replication: each seed's episodes are "
        "averaged first, then the mean and its 95% Student-t interval are taken across "
        "seeds.</p>", _table(conf),
    ]
    if diff is not None:
        parts += [f"<h3>Paired differences to {e(baseline)}</h3><p>Each mechanism minus the "
                  "baseline on the same seed, averaged over seeds, with the paired 95% "
                  "interval.</p>", _table(diff)]
    for caption, img in _plots(res, conf):
        parts += [f"<h3>{e(caption)}</h3>", img]
    parts += [
        "<h2>Versions</h2>", _table(pd.DataFrame([versions()])),
        "<h2>Run it again</h2><p>Save the scenario below as "
        f"<code>{e(res.scenario)}.toml</code>, then run this Python:</p>",
        f"<pre>{e(res.rerun_code())}</pre>",
        "<h3>Scenario</h3>", f"<pre>{e(res.scenario_toml)}</pre>",
    ]
    return _page(title or res.scenario, parts)


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th"
         "{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
         "pre{background:#f6f6f6;padding:1em;overflow:auto}.meta{color:#777}"
         "img{max-width:100%}")


def _page(title: str, parts: list[str]) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


def experiment_report(runs: pd.DataFrame, episodes: pd.DataFrame, grid: dict[str, list],
                      scenario_name: str, seeds: list[int], iterations: int | None,
                      outcomes: list[str], baseline: str | None = None,
                      sweep_id: str | None = None, title: str | None = None) -> str:
    """The HTML report of an experiment (``econsim.sweep``): the scenario, the grid, the
    runs; per combination of the grid's values and outcome the mean and 95% interval across
    seeds, the paired differences to a ``baseline`` combination (default: the first), a
    plot of each outcome against the first swept parameter with its intervals; versions and
    the ``econsim sweep`` command that reruns it. ``episodes``: the runs' rows
    (``analysis.episode_table``)."""
    from econsim import sweep, uncertainty

    if episodes.empty:
        raise ValueError("report: the experiment has no finished run")
    data = sweep.by_combination(runs, episodes, grid)
    outcomes = [o for o in outcomes if o in data.columns]
    if not outcomes:
        raise ValueError("report: none of the outcomes is in the runs' tables")
    combos = list(dict.fromkeys(data["combination"]))
    baseline = baseline or combos[0]
    if baseline not in combos:
        raise ValueError(f"report: baseline {baseline!r} is not among the combinations "
                         f"({'; '.join(combos)})")
    conf = uncertainty.confidence(data, outcomes, "combination")
    e = html.escape
    parts = [
        f"<h1>{e(title or f'Experiment on {scenario_name}')}</h1>",
        f"<p class='meta'>econsim report, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<h2>What was run</h2><ul>",
        f"<li>Scenario: <b>{e(scenario_name)}</b></li>",
        *[f"<li>{e(k)}: {e(', '.join(map(str, v)))}</li>" for k, v in grid.items()],
        f"<li>Seeds: {e(', '.join(map(str, seeds)))}; "
        + (f"{iterations} training iterations per run" if iterations
           else "the scenario's training iterations")
        + f"; {len(runs)} run(s)</li></ul>",
        "<h3>Runs</h3>", _table(runs.drop(columns=["error"], errors="ignore")),
        "<h2>Results</h2><p>Final evaluation of each run. Seeds are the unit of replication: "
        "each seed's episodes are averaged first, then the mean and its 95% Student-t "
        "interval are taken across seeds.</p>",
        _table(uncertainty.readable(conf, "combination")),
    ]
    if len(combos) > 1:
        diff = uncertainty.paired_differences(data, outcomes, baseline, "combination")
        parts += [f"<h3>Paired differences to {e(baseline)}</h3><p>Each combination minus "
                  "the baseline on the same seed, averaged over seeds, with the paired 95% "
                  "interval.</p>", _table(uncertainty.readable(diff, "combination",
                                                               "difference"))]
    parts += ["<h3>Outcomes: mean and 95% confidence interval across seeds</h3>",
              _ci_figure(conf, "combination")]
    parts += [
        "<h2>Versions</h2>", _table(pd.DataFrame([versions()])),
        "<h2>Run it again</h2><p>On the command line (the same sweep id keeps finished "
        "runs):</p>",
        f"<pre>{e(sweep.rerun_command(scenario_name, grid, seeds, iterations, sweep_id))}"
        "</pre>",
    ]
    return _page(title or f"Experiment on {scenario_name}", parts)
