"""Start page: what econsim is in economic terms, a five-minute walkthrough and a glossary.
Imports nothing heavy, so the app opens quickly."""

import streamlit as st

st.title("econsim workbench")
st.markdown(
    "econsim simulates small economies of **agents** who gather resources, build houses, trade "
    "and pay taxes (the *Gather-Trade-Build* economy), and a set of cooperation games from "
    "multi-agent reinforcement learning. You state a **policy** (a tax schedule, a learned "
    "tax planner, an incentive scheme), let agents play under it, and compare **welfare**, "
    "**productivity** and **equality** across policies, with confidence intervals across "
    "random **seeds**, tables to take away (CSV, Stata, Parquet) and regressions.")

st.subheader("Five minutes, no code")
steps = [
    ("econsim/app_pages/what_if.py", "1. What-if",
     "press *Run what-if*: scripted workers play the US-federal schedule and a 30% flat tax "
     "on four seeds (about a second)."),
    ("econsim/app_pages/plots.py", "2. Plots",
     "the equality-productivity trade-off, Lorenz curves before and after tax, tax incidence "
     "by income decile and skill, the schedules T(z)."),
    ("econsim/app_pages/exports.py", "3. Exports",
     "every table as CSV or Stata with labelled variables, a zip of everything, a one-file "
     "HTML report."),
    ("econsim/app_pages/regression.py", "4. Regression",
     "`welfare_sum ~ C(mechanism)` with standard errors clustered by seed."),
    ("econsim/app_pages/experiment.py", "5. Experiment",
     "a grid of tax rates (or any parameter) x seeds, trained and regressed in one go."),
]
for page, label, what in steps:
    c1, c2 = st.columns([1, 4])
    c1.page_link(page, label=label)
    c2.markdown(what)

st.subheader("Glossary")
GLOSSARY = (
    ("scenario", "one TOML file: the game and its settings, the agents' learning algorithm, "
     "the mechanism, the seeds and the training budget"),
    ("mechanism", "the policy under test: a tax schedule (free market, US federal, flat, "
     "custom brackets, Saez) or a learned planner"),
    ("planner", "a central agent that sets tax rates (MetaGrad, dual-RL) and learns to raise "
     "welfare"),
    ("welfare measures", "productivity (total coin), equality (1 - Gini), welfare = "
     "productivity x equality; also utilitarian, Atkinson, Nash and Rawlsian welfare"),
    ("run", "training a scenario on all its seeds; stored in the runs folder with its tables "
     "and checkpoint"),
    ("what-if", "playing agents (scripted, random, or trained in a run) under one or more "
     "mechanisms on the same seeds, without training"),
    ("seed", "one independent replication (its own random world and agents); the unit for "
     "confidence intervals and clustered standard errors"),
)
st.markdown("\n".join(["| term | meaning |", "|---|---|",
                       *(f"| **{t}** | {m} |" for t, m in GLOSSARY)]))
st.caption("MARL researchers: the chapters of the dissertation (LIO, MetaGrad, CM3, HSD), "
           "their games and benchmarks are in the README; Runs and Plots show any stored "
           "run.")
