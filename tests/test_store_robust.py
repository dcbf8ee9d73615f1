"""The store under hostile or unlucky conditions: folder names with quotes and glob
characters, malformed and renamed run folders (skipped with a one-line warning by the
store, the CLI and every app page), a run killed before its first row, and queries while
a run writes its tables."""

import json
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import tomli_w
from streamlit.testing.v1 import AppTest

from econsim import analysis, cli, runner, store
from econsim.errors import ScenarioError, StoreWarning
from tests.reference import small

APP = Path(__file__).resolve().parents[1] / "app.py"
PAGES = ("builder", "what_if", "plots", "runs", "exports", "regression")


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """One finished tiny run (copied into each test's runs folder)."""
    root = tmp_path_factory.mktemp("good")
    return runner.run(small("ipd_pg", 2, checkpoint_every=1), seeds=[0, 1], progress=False,
                      root=root, run_id="good")


def _copy(run, root: Path, name: str, **manifest) -> Path:
    """A copy of ``run`` in ``root/name`` whose run.json and tables name ``name`` (plus
    changes to run.json)."""
    dest = root / name
    shutil.copytree(run.path, dest)
    for table in dest.glob("*.parquet"):
        pd.read_parquet(table).assign(run_id=name).to_parquet(table)
    info = json.loads((dest / "run.json").read_text())
    (dest / "run.json").write_text(json.dumps({**info, "run_id": name, **manifest}))
    return dest


def _rows(run) -> int:
    return len(pd.read_parquet(run.path / "episodes.parquet"))


# ------------------------------------------------------------------ SQL from path reprs


@pytest.mark.parametrize("folder", ["o'brien runs", 'say "hi"', "runs[1]", "star*dir",
                                    "it's \"both\""])
def test_queries_work_in_a_runs_folder_with_quotes_and_glob_characters(good_run, tmp_path,
                                                                       folder):
    root = tmp_path / folder
    _copy(good_run, root, "r1")
    for decoy in ("runs1", "starXdir"):  # what the globs runs[1] and star*dir would match
        for table in ("episodes", "agents"):
            df = pd.read_parquet(root / "r1" / f"{table}.parquet")
            (tmp_path / decoy / "r1").mkdir(parents=True, exist_ok=True)
            pd.concat([df, df]).to_parquet(tmp_path / decoy / "r1" / f"{table}.parquet")
    got = store.query("select count(*) as n, count(distinct run_id) as k from episodes", root)
    assert got.to_dict("records") == [{"n": _rows(good_run), "k": 1}]
    assert store.query("select count(*) as n from agents", root).n[0] == len(good_run.agents)
    assert store.runs(root).run_id.tolist() == ["r1"]


def test_a_crafted_folder_name_is_skipped_and_reads_nothing_else(good_run, tmp_path,
                                                                 monkeypatch):
    """A folder named to close the SQL string and read another file is not a run id: it is
    skipped with a warning and the query sees exactly the real run's rows."""
    monkeypatch.chdir(tmp_path)  # where the crafted name's relative path would point
    root = tmp_path / "runs"
    _copy(good_run, root, "r1")
    secret = tmp_path / "secret.csv"
    secret.write_text("run_id\nSECRET\n")
    crafted = f"x\"'], union_by_name=true) union all by name select * from read_csv('{secret.name}"
    crafted = crafted.replace("/", "")
    _copy(good_run, root, crafted)
    (root / "it's").mkdir()
    with pytest.warns(StoreWarning) as caught:
        got = store.query("select run_id, count(*) as n from episodes group by 1", root)
    assert got.to_dict("records") == [{"run_id": "r1", "n": _rows(good_run)}]
    messages = [str(w.message) for w in caught]
    assert any(crafted in m and "not a valid run id" in m for m in messages)
    assert any("it's skipped" in m for m in messages)


# ------------------------------------------------------------------ bad folders


def _bad_store(good_run, root: Path) -> dict[str, str]:
    """A runs folder with two good runs and one folder of each bad kind; returns
    bad folder -> the reason its warning must give."""
    _copy(good_run, root, "a-good")
    _copy(good_run, root, "b-good")
    bad = {}
    d = _copy(good_run, root, "bad-json")
    (d / "run.json").write_text("{not json")
    bad["bad-json"] = "run.json is not valid JSON"
    d = _copy(good_run, root, "no-manifest")
    (d / "run.json").unlink()
    bad["no-manifest"] = "no run.json"
    shutil.copytree(good_run.path, root / "renamed")  # run.json still says 'good'
    bad["renamed"] = "run.json belongs to run 'good'"
    d = _copy(good_run, root, "no-agents")
    (d / "agents.parquet").unlink()
    bad["no-agents"] = "finished run without agents.parquet"
    d = _copy(good_run, root, "garbled")
    (d / "episodes.parquet").write_bytes(b"PAR1 not really")
    bad["garbled"] = "episodes.parquet is not a readable Parquet file"
    d = _copy(good_run, root, "seeds-odd", seeds="zero")
    bad["seeds-odd"] = "seeds is not a list of integers"
    # killed before its first row: a manifest, no tables (or an old empty agents table)
    d = _copy(good_run, root, "c-killed", status="running", iterations_done=0)
    for f in ("episodes.parquet", "agents.parquet"):
        (d / f).unlink()
    shutil.rmtree(d / "checkpoints")
    pd.DataFrame().to_parquet(d / "agents.parquet")
    return bad


def test_store_skips_bad_folders_with_one_warning_each(good_run, tmp_path):
    root = tmp_path / "runs"
    bad = _bad_store(good_run, root)
    for call in (lambda: store.runs(root), lambda: store.connect(root).close(),
                 lambda: store.query("select 1", root)):
        with pytest.warns(StoreWarning) as caught:
            call()
        messages = [str(w.message) for w in caught]
        assert len(messages) == len(bad)
        for folder, reason in bad.items():
            [m] = [m for m in messages if f"{root / folder} skipped" in m]
            assert reason in m and "\n" not in m
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        assert store.runs(root).run_id.tolist() == ["a-good", "b-good", "c-killed"]
        got = store.query("select run_id, count(*) as n from agents group by 1 order by 1",
                          root)
        assert got.to_dict("records") == [{"run_id": r, "n": len(good_run.agents)}
                                          for r in ("a-good", "b-good")]
        assert len(analysis.tidy(None, "episodes", root, evaluations="all")) == 2 * _rows(good_run)
    with pytest.raises(ScenarioError, match="'bad-json' in .* cannot be used: run.json is "
                       "not valid JSON"):
        store.load("bad-json", root=root)
    with pytest.raises(ScenarioError, match="'c-killed' has no agents table yet"):
        store.load("c-killed", "agents", root)


def test_a_run_killed_before_its_first_row_leaves_every_view_queryable(good_run, tmp_path):
    root = tmp_path / "runs"
    _copy(good_run, root, "only-killed", status="running")
    for f in ("episodes.parquet", "agents.parquet"):
        (root / "only-killed" / f).unlink()
    pd.DataFrame().to_parquet(root / "only-killed" / "agents.parquet")  # no columns
    for table in store.TABLES:
        assert store.query(f"select count(*) as n from {table}", root).n[0] == 0
    assert store.query("select status from runs", root).status.tolist() == ["running"]
    _copy(good_run, root, "later")
    assert store.query("select count(*) as n from agents", root).n[0] == len(good_run.agents)


def test_cli_lists_regresses_and_exports_past_bad_folders(good_run, tmp_path, capsys):
    root = tmp_path / "runs"
    bad = _bad_store(good_run, root)
    assert cli.main(["--root", str(root), "list", "runs"]) == 0
    out, err = capsys.readouterr()
    assert "a-good" in out and "b-good" in out and "bad-json" not in out
    lines = err.strip().splitlines()
    assert len(lines) == len(bad) and all(
        line.startswith("econsim: warning: run folder ") for line in lines)
    assert cli.main(["--root", str(root), "regress", "collective ~ C(run_id)"]) == 0
    out, err = capsys.readouterr()
    assert "2 run(s)" in out and "econsim: warning" in err
    assert cli.main(["--root", str(root), "export", "a-good", "--out", str(tmp_path / "o")]) == 0
    assert cli.main(["--root", str(root), "export", "renamed"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run.json belongs to run 'good'" in err


def test_every_app_page_renders_past_bad_folders(good_run, tmp_path, monkeypatch):
    """The Runs, Exports, Regression, Plots and What-if pages used to crash on one bad
    run.json; now each renders, and pages listing runs say which folders were skipped."""
    root = tmp_path / "runs"
    bad = _bad_store(good_run, root)
    monkeypatch.setenv("ECONSIM_RUNS", str(root))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    for page in PAGES:
        at.switch_page(f"econsim/app_pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page == "plots":
            at.radio[0].set_value(at.radio[0].options[-1]).run()  # stored runs
            assert not at.exception and not at.error, page
        if page in ("runs", "plots"):
            shown = " ".join(w.value for w in at.warning)
            assert all(folder in shown for folder in bad), (page, shown)
    at.switch_page("econsim/app_pages/what_if.py").run()
    trained = [o for o in at.selectbox(key="w_brains").options if o.startswith("Trained")]
    assert trained == ["Trained: a-good", "Trained: b-good"]
    at.switch_page("econsim/app_pages/regression.py").run()
    at.selectbox(key="g_source").set_value("runs_episodes").run()
    assert at.multiselect(key="g_runs").value == ["a-good", "b-good"]  # not the killed run
    at.text_input(key="g_formula").input("collective ~ C(run_id)")
    at.button(key="g_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]


# ------------------------------------------------------------------ concurrent readers


@pytest.mark.slow
def test_queries_while_a_run_writes_never_fail(tmp_path):
    """250 store.query / store.runs calls while `econsim run` writes its tables (a
    checkpoint every iteration) in another process: no failure. About 10-20 s."""
    data = small("ipd_pg", 100_000, checkpoint_every=1).resolved()
    data["train"].update(eval_every=3, eval_episodes=4)
    path = tmp_path / "writer.toml"
    path.write_text(tomli_w.dumps(data))
    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "econsim.cli", "--root", str(root), "run",
                             str(path), "--seeds", "0-15", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    queries = ["select count(*) from episodes", "select count(*) from agents",
               "select e.seed, count(a.agent), avg(e.collective) from agents a join "
               "episodes e using (run_id, seed, phase, iteration) group by 1",
               "select status, iterations_done from runs"]
    failures, calls, done = [], 0, []
    try:
        deadline = time.time() + 120
        while calls < 250 and time.time() < deadline:
            try:
                if calls % 5 == 4:
                    listing = store.runs(root)
                    if len(listing):
                        done.append(int(listing.iterations_done.iloc[0]))
                else:
                    store.query(queries[calls % 4], root)
            except Exception as err:  # noqa: BLE001 (every failure counts)
                failures.append(f"{type(err).__name__}: {err}")
            calls += 1
    finally:
        proc.kill()
        proc.wait()
    assert calls >= 250 and not failures, (calls, failures[:5])
    assert done and max(done) - min(done) >= 3, "the run did not write during the queries"


@pytest.mark.parametrize("sql", [
    "select * from read_csv('/etc/hostname')",
    "select * from read_text('/etc/passwd')",
    "copy (select * from runs) to '{out}/leak.csv'",
    "attach '{out}/x.db' as x",
    "export database '{out}/dump'",
    "set enable_external_access = true",
    "set lock_configuration = false",
    "install httpfs",
    "select * from '{root}/*/episodes.parquet'",
])
def test_sql_reads_and_writes_no_file(good_run, tmp_path, sql):
    root = good_run.path.parent
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ScenarioError) as err:
        store.query(sql.format(out=out, root=root), root)
    assert "\n" not in str(err.value) and str(err.value).startswith("query failed: ")
    assert list(out.iterdir()) == []
    assert len(store.query("select * from episodes", root))  # the views still work
    con = store.connect(root)
    try:
        with pytest.raises(duckdb.Error):
            con.execute(sql.format(out=out, root=root))
    finally:
        con.close()
