"""A run id is a plain name: ids that would leave the runs folder (``../x``, absolute paths,
links) are refused with one line by the store, the CLI (export, resume), the Mesa model,
analysis and sweeps, and nothing is read or written outside the runs folder or ``--out``."""

import json
import shutil
from pathlib import Path

import pytest

from econsim import analysis, cli, runner, store, sweep
from econsim.errors import ScenarioError
from econsim.model import EconModel, load_trainer
from tests.reference import small

BAD_IDS = ["../outside/x", "..", ".hidden", "a/b", "a..b", "x" * 201, "", "run id"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A runs folder with one tiny run, and a foreign run folder outside it (``outside/x``)
    that an escaping run id would reach."""
    base = tmp_path_factory.mktemp("ids")
    root = base / "runs"
    result = runner.run(small("ipd_pg", 2, checkpoint_every=1), seeds=[0], progress=False,
                        root=root, run_id="good")
    foreign = base / "outside" / "x"
    shutil.copytree(result.path, foreign)
    info = json.loads((foreign / "run.json").read_text())
    (foreign / "run.json").write_text(json.dumps({**info, "run_id": "x"}))
    return root, foreign


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.parametrize("bad", BAD_IDS + ["/etc"])
def test_store_refuses_ids_that_are_not_plain_names(stored, bad):
    root, _ = stored
    for call in (lambda: store.resolve(bad, root), lambda: store.run_dir(bad, root),
                 lambda: store.load(bad, "episodes", root)):
        with pytest.raises(ScenarioError, match="is not allowed: a run id is a plain name") \
                as err:
            call()
        assert "\n" not in str(err.value)
    assert store.run_dir("good", root) == root / "good"


def test_absolute_path_of_a_real_run_is_refused(stored):
    root, foreign = stored
    with pytest.raises(ScenarioError, match="is not allowed"):
        store.run_dir(str(foreign), root)
    with pytest.raises(ValueError, match="is not allowed"):  # EconModel took any folder
        EconModel.from_run(str(foreign), root=root)
    with pytest.raises(ValueError, match="is not allowed"):
        load_trainer(str(foreign), root=root)
    with pytest.raises(ValueError, match="is not allowed"):
        EconModel.from_run("../outside/x", root=root)


def test_a_link_out_of_the_runs_folder_is_not_followed(stored, tmp_path):
    root, foreign = stored
    link = root / "linked"
    link.symlink_to(foreign, target_is_directory=True)
    try:
        with pytest.raises(ScenarioError, match="leads outside"):
            store.run_dir("linked", root)
        with pytest.warns(Warning, match="linked skipped: it leads outside"):
            ids = store.runs(root).run_id.tolist()
        assert ids == ["good"]
    finally:
        link.unlink()


def test_cli_export_of_an_escaping_id_reads_and_writes_nothing(stored, tmp_path, capsys):
    root, foreign = stored
    before = _snapshot(foreign.parent)
    out = tmp_path / "d"
    code = cli.main(["--root", str(root), "export", "../outside/x", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("econsim: error: run id '../outside/x' is not allowed")
    assert not out.exists() and _snapshot(foreign.parent) == before
    # a good id writes exactly its files, inside --out
    assert cli.main(["--root", str(root), "export", "good", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "good-agents.csv", "good-dictionary.csv", "good-episodes.csv"]


@pytest.mark.parametrize("bad", ["../outside/x", "/tmp"])
def test_cli_resume_of_an_escaping_id_trains_nothing(stored, bad, capsys):
    root, foreign = stored
    before, listing = _snapshot(foreign.parent), _snapshot(root)
    code = cli.main(["--root", str(root), "run", "ipd_pg", "--resume", bad, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not allowed" in err
    assert _snapshot(foreign.parent) == before and _snapshot(root) == listing


def test_runner_refuses_bad_new_run_ids_before_writing(tmp_path):
    for bad in BAD_IDS:
        with pytest.raises(ScenarioError, match="is not allowed"):
            runner.run(small("ipd_pg", 2, checkpoint_every=1), seeds=[0], progress=False,
                       root=tmp_path / "r", run_id=bad)
    assert not (tmp_path / "r").exists() and not (tmp_path / "outside").exists()


def test_analysis_refuses_escaping_ids(stored):
    root, _ = stored
    for bad in ("../outside/x", "/etc"):
        with pytest.raises(ValueError, match="is not allowed"):
            analysis.tidy([bad], "episodes", root)
        with pytest.raises(ValueError, match="is not allowed"):
            analysis.episode_table([bad], root)
    assert set(analysis.tidy(["good"], "episodes", root).run_id) == {"good"}


def test_sweep_ids_are_plain_names(tmp_path):
    for bad in ("../x", ".x", "a..b"):
        with pytest.raises(ScenarioError, match="sweep id .* is not allowed"):
            sweep.plan("ipd_pg", {}, [0], sweep_id=bad, root=tmp_path)
    assert not any(tmp_path.iterdir())
    tasks, _ = sweep.plan("ipd_pg", {"algorithm.lr": [0.1, 0.2]}, [0], sweep_id="s",
                          root=tmp_path)
    assert [t["run_id"] for t in tasks] == ["s-00-lr0.1", "s-01-lr0.2"]
