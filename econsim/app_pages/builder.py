"""Scenario builder: game, mechanism, agents, seeds and budget -> a validated scenario TOML;
optionally train it right here (small budgets) with ``econsim.runner.run``."""

import json
import threading
import time
import tomllib

import streamlit as st
import tomli_w

from econsim import distribution, envs, store
from econsim import scenario as scenario_mod
from econsim.app_pages import charts, common
from econsim.errors import ScenarioError

ss = st.session_state
DEFAULT = "gtb_us_federal"
TRAIN_FIELDS = ("iterations", "eval_every", "eval_episodes", "log_every", "checkpoint_every",
                "keep_every")


def _raw(name: str) -> dict:
    """A shipped scenario as written (not resolved: only what it sets)."""
    return tomllib.loads(scenario_mod.find(name).read_text())


def _fill(data: dict) -> None:
    """Put a (valid) scenario dict into the builder's widgets."""
    env, alg = data["env"], data["algorithm"]
    mech = data.get("mechanism") or {}
    fields = common.env_fields(env["name"])
    ss.b_name, ss.b_description = data.get("name", "my_scenario"), data.get("description", "")
    ss.b_seeds = ",".join(str(s) for s in data.get("seeds", [0]))
    ss.b_env = env["name"]
    if "n_agents" in fields:
        ss.b_n_agents = int(env.get("n_agents") or common.n_agents_of(env["name"], env))
    ss.b_env_params = tomli_w.dumps({k: v for k, v in env.items() if k not in ("name",
                                                                              "n_agents")})
    ss.b_mechanism = common.scenario_mechanism_key(data)
    ss.b_algorithm = alg["name"]
    ss.b_alg_params = tomli_w.dumps({k: v for k, v in alg.items() if k != "name"})
    ss.b_flat_rate = float(mech.get("rate", 0.3)) if mech.get("name") == "flat" else 0.3
    ss.b_brackets_data = (common.brackets_frame(mech["thresholds"], mech["rates"])
                          if mech.get("name") == "custom" else common.brackets_frame())
    ss.pop("b_brackets", None)  # forget edits of the previous table
    ss.b_mech_params = tomli_w.dumps({k: v for k, v in mech.items()
                                      if k not in ("name", "rate", "thresholds", "rates")})
    defaults = scenario_mod.TrainSpec()
    for f in TRAIN_FIELDS:
        ss[f"b_{f}"] = int((data.get("train") or {}).get(f, getattr(defaults, f)))


def _load(text: str | bytes, source: str) -> None:
    """Validate a TOML text (or a file's bytes) as ``econsim run`` does and load it into the
    builder; the outcome goes to b_load_msg."""
    try:
        data = (scenario_mod.parse_bytes(text, source) if isinstance(text, bytes)
                else scenario_mod.parse_text(text, source))
        scenario_mod.from_dict(data, source=source)
    except ScenarioError as err:
        ss.b_load_msg = ("error", common.one_line(err))
        return
    _fill(data)
    ss.b_load_msg = ("success", f"Loaded {source}.")


def _on_start() -> None:
    if ss.b_start in scenario_mod.names():
        _fill(_raw(ss.b_start))
        ss.b_load_msg = ("success", f"Loaded the shipped scenario {ss.b_start}.")


def _on_upload() -> None:
    f = ss.get("b_upload")
    if f is not None:
        _load(f.getvalue(), f.name)


def _on_paste() -> None:
    _load(ss.get("b_paste", ""), "pasted TOML")


def _on_env() -> None:
    ss.b_env_params = ""
    if "n_agents" in common.env_fields(ss.b_env):
        ss.b_n_agents = common.n_agents_of(ss.b_env)


def _on_env_params() -> None:
    """Where the number of agents is implied by other parameters (a default of None:
    navigation's formation, Cleanup's map), follow them."""
    fields = common.env_fields(ss.b_env)
    if "n_agents" in fields and fields["n_agents"] is None:
        try:
            params = common.parse_toml(ss.b_env_params, "game parameters")
        except ScenarioError:
            return  # the page shows the error
        if "n_agents" not in params:  # else the TOML's own n_agents wins anyway
            ss.b_n_agents = common.n_agents_of(ss.b_env, params)


def _on_mechanism() -> None:
    ss.b_mech_params = ""


def _on_algorithm() -> None:
    ss.b_alg_params = ""


if "b_env" not in ss:  # first visit (or back from another page): restore the draft
    _fill(ss.get("b_draft") or _raw(DEFAULT))

st.title("Scenario builder")
st.caption("Pick a game, who sets the rules (a tax schedule or a learning designer), the "
           "agents' learning algorithm, seeds and a training budget. The scenario is checked "
           "against the same schema as `econsim run` as you type.")

# ------------------------------------------------------------------------------ load / start
c1, c2 = st.columns(2)
c1.selectbox("Start from a shipped scenario", ["(keep current)", *scenario_mod.names()],
             key="b_start", on_change=_on_start)
c2.file_uploader("Load a scenario TOML", type=["toml"], key="b_upload", on_change=_on_upload)
with st.expander("… or paste a scenario TOML"):
    st.text_area("Scenario TOML", key="b_paste", height=160)
    st.button("Load pasted TOML", key="b_load_paste", on_click=_on_paste)
if ss.get("b_load_msg"):
    kind, msg = ss.b_load_msg
    (st.error if kind == "error" else st.success)(msg)

# ------------------------------------------------------------------------------ the scenario
st.subheader("Scenario")
c1, c2 = st.columns(2)
c1.text_input("Scenario name", key="b_name", help="letters, digits, _ . - (used in run ids)")
c2.text_input("Seeds", key="b_seeds", help="independent replicas, e.g. 0-2 or 0,3,5")
st.text_input("Description", key="b_description")

env_names = envs.names()
if ss.get("b_env") not in env_names:
    ss.b_env = env_names[0]
c1, c2, c3 = st.columns(3)
env = c1.selectbox("Game", env_names, key="b_env", on_change=_on_env)
choices = common.mechanism_choices(env)
keys = [c.key for c in choices]
if ss.get("b_mechanism") not in keys:
    ss.b_mechanism = keys[0]
mkey = c2.selectbox("Mechanism (who sets the rules)", keys, key="b_mechanism",
                    format_func=lambda k: common.choice(k).label, on_change=_on_mechanism)
mech_choice = common.choice(mkey)
algs = common.agent_algorithms(env, mkey)
if ss.get("b_algorithm") not in algs:
    ss.b_algorithm = algs[0]
alg = c3.selectbox("Agents' learning algorithm", algs, key="b_algorithm",
                   on_change=_on_algorithm, disabled=mech_choice.kind == "designer",
                   help="a learned designer brings its own agents")
fields = common.env_fields(env)
if "n_agents" in fields:
    st.number_input("Agents", min_value=1, max_value=64, step=1, key="b_n_agents")

mech_spec = None
if mech_choice.kind == "tax":
    mech_spec = {"name": mech_choice.name}
    if mech_choice.name == "flat":
        mech_spec["rate"] = st.number_input("Flat tax rate (share of income)", step=0.05,
                                            format="%.2f", key="b_flat_rate")
    if mech_choice.name == "custom":
        st.caption("Brackets: lower edge in coin (first 0, increasing) and the marginal rate "
                   "(0 to 1) on income above it. Add or delete rows as you like.")
        edited = st.data_editor(ss.b_brackets_data, key="b_brackets", num_rows="dynamic",
                                hide_index=True, column_config={
                                    "threshold": st.column_config.NumberColumn(
                                        "lower edge (coin)", format="%.3f"),
                                    "rate": st.column_config.NumberColumn(
                                        "marginal rate", format="%.2f")})
        mech_spec.update(common.brackets_spec(edited))
    if mech_choice.name == "saez":
        st.caption("The Saez planner starts at zero rates and re-estimates its schedule from "
                   "the incomes it observes every tax period.")

with st.expander("More parameters (TOML): game, algorithm, mechanism"):
    st.caption("Anything the game, the learner or the mechanism accepts; unknown names are "
               "refused with the list of allowed ones. Leave empty for the defaults.")
    st.text_area("Game parameters", key="b_env_params", height=90, on_change=_on_env_params)
    st.text_area("Algorithm parameters", key="b_alg_params", height=120)
    if mech_choice.kind == "tax":
        st.text_area("Mechanism parameters", key="b_mech_params", height=70)

st.subheader("Training budget")
cols = st.columns(len(TRAIN_FIELDS))
helps = {"iterations": "training iterations", "eval_every": "iterations between evaluations",
         "eval_episodes": "episodes per seed in an evaluation",
         "log_every": "iterations averaged into one log row",
         "checkpoint_every": "iterations between checkpoints",
         "keep_every": "also keep the checkpoint of every N-th iteration (0: only the last), "
                       "to fork a what-if from it with `econsim run FILE --fork RUN_ID@N`"}
for col, f in zip(cols, TRAIN_FIELDS, strict=True):
    col.number_input(f.replace("_", " ").capitalize(), min_value=0 if f == "keep_every" else 1,
                     step=1, key=f"b_{f}", help=helps[f])

# ------------------------------------------------------------------------------ validate
scenario, data = None, None
try:
    env_table = {"name": env, **({"n_agents": int(ss.b_n_agents)} if "n_agents" in fields
                                 else {}),
                 **common.parse_toml(ss.b_env_params, "game parameters")}
    alg_table = {"name": alg, **common.parse_toml(ss.b_alg_params, "algorithm parameters")}
    data = {"name": ss.b_name, "description": ss.b_description,
            "seeds": common.parse_seeds(ss.b_seeds), "env": env_table, "algorithm": alg_table,
            "train": {f: int(ss[f"b_{f}"]) for f in TRAIN_FIELDS}}
    if mech_spec is not None:
        mech_spec.update(common.parse_toml(ss.get("b_mech_params", ""), "mechanism parameters"))
        data["mechanism"] = mech_spec
    scenario = scenario_mod.from_dict(data, source="scenario")
except (ScenarioError, ValueError) as err:
    st.error(common.one_line(err))
if data is not None:
    ss.b_draft = data

if scenario is not None:
    ss[common.BUILDER_KEY] = data
    n = scenario.make_game().n_agents
    what = mech_choice.label if mech_choice.kind != "none" else "no mechanism"
    st.success(f"Valid scenario **{scenario.name}**: {env} with {n} agents, {what}, "
               f"agents learn with {scenario.algorithm_name}, seeds {scenario.seeds}.")
    c1, c2 = st.columns([1, 3])
    c1.download_button("Download scenario TOML", scenario.to_toml(),
                       file_name=f"{scenario.name}.toml", mime="application/toml",
                       key="b_download")
    if c2.button("Play it in a what-if", key="b_whatif",
                 help="scripted workers (GTB; random agents in other games) under this "
                      "scenario's game and mechanism"):
        ss.w_scenario, ss.w_brains = common.BUILDER_OPTION, "scripted"
        ss.w_mechanisms = ["scenario"]
        st.switch_page("econsim/app_pages/what_if.py")
    with st.expander("The scenario as a run will save it (every default written out)"):
        st.code(scenario.to_toml(), language="toml")
    if mech_spec is not None:
        schedule = common.schedule_of(mech_spec)
        if schedule is not None:
            schedule = schedule.assign(mechanism=mech_choice.label)
            st.markdown("**Tax schedule now in force**")
            c1, c2 = st.columns(2)
            c1.altair_chart(charts.schedule_bars(schedule), width="stretch")
            c2.altair_chart(charts.tax_curve(distribution.tax_curve(schedule)), width="stretch")


# ------------------------------------------------------------------------------ train
def _train(job: dict) -> None:
    """Runs in a worker thread; touches no Streamlit API."""
    try:
        from econsim import runner  # torch: loaded when a run starts, not with the page

        result = runner.run(job["scenario"], progress=False, root=job["root"],
                            run_id=job["run_id"])
        job["final"] = result.final()
        job["wall_s"] = result.wall_s
    except Exception as err:  # shown to the user as one line
        job["error"] = common.one_line(err)


def _iterations_done(job: dict) -> int:
    try:
        log = store.inside(job["path"], "log.jsonl")
    except ScenarioError:
        return 0
    done = 0
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                done = max(done, int(json.loads(line).get("iteration", 0)))
            except (ValueError, TypeError):
                continue
    return done


st.subheader("Train")
st.caption("Trains every seed of the scenario and stores the run in the runs folder "
           f"(`{common.runs_root()}`), where the runs browser, exports, plots and trained "
           "what-ifs find it. Keep budgets small here (GTB: about 1 s per iteration and seed "
           "with the default networks); long runs belong to `econsim run`.")
if st.button("Train this scenario", key="b_train", disabled=scenario is None):
    from econsim import runner  # torch: loaded when a run starts, not with the page

    root = common.runs_root()
    run_id = runner.new_run_id(scenario)
    try:
        path = store.resolve(run_id, root)
    except ScenarioError as err:  # e.g. a scenario name that makes no plain run id
        st.error(common.one_line(err))
    else:
        job = {"scenario": scenario, "root": root, "run_id": run_id, "path": path,
               "total": scenario.train.iterations, "error": None, "final": None}
        job["thread"] = threading.Thread(target=_train, args=(job,), daemon=True)
        job["thread"].start()
        ss.b_training = job

job = ss.get("b_training")
if job is not None:
    bar = st.progress(0.0, text=f"Training {job['run_id']} …")
    while job["thread"].is_alive():
        done = _iterations_done(job)
        bar.progress(min(done / job["total"], 1.0),
                     text=f"Training {job['run_id']}: {done} of {job['total']} iterations")
        time.sleep(0.25)
    if job["error"]:
        bar.empty()
        st.error(f"Training failed: {job['error']}")
    else:
        bar.progress(1.0, text=f"Trained {job['run_id']} in {job['wall_s']:.1f} s")
        st.success(f"Run **{job['run_id']}** is stored in `{job['root']}`. Open it in the "
                   "runs browser, or play its agents in a what-if (agents: trained).")
        st.dataframe(job["final"], hide_index=True)
        st.page_link("econsim/app_pages/runs.py", label="Open the runs browser →")
