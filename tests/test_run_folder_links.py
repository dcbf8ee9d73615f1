"""Links inside a run folder are never followed: a run folder whose own files (log.jsonl,
checkpoints/, export/, tables, run.json, .lock...) are symbolic links is refused with one line
or skipped with a warning, and nothing outside the runs folder is read, written or deleted;
stale-temp cleanup removes only econsim's own temporary files in usable run folders."""

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from econsim import cli, files, runner, store
from econsim.errors import ScenarioError, StoreWarning
from tests.reference import small


@pytest.fixture
def stored(tmp_path):
    """A finished tiny ipd_pg run ``r`` (marked interrupted, so `--resume` takes it) in
    ``tmp_path/runs``, and an ``outside`` folder with a victim file."""
    root = tmp_path / "runs"
    run = runner.run(small("ipd_pg", 2), seeds=[0], progress=False, root=root, run_id="r")
    info = json.loads((run.path / "run.json").read_text())
    (run.path / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious\n")
    return root, run.path, outside


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _old(path: Path) -> Path:
    old = time.time() - 3600
    os.utime(path, (old, old), follow_symlinks=False)
    return path


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def _one_line(code: int, err: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("econsim: error: "), err


# ------------------------------------------------------------------------------ the helper


def test_inside_refuses_links_and_names_that_are_not_plain(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert store.inside(tmp_path, "real", "x.pt") == tmp_path / "real" / "x.pt"
    assert store.inside(tmp_path, "missing.json") == tmp_path / "missing.json"
    for parts in [("link",), ("link", "x.pt"), ("..", "x"), ("a/b",), ("",), (".",)]:
        with pytest.raises(ScenarioError) as err:
            store.inside(tmp_path, *parts)
        assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------ the probe


@pytest.mark.parametrize("name", ["log.jsonl", "run.json", "scenario.toml", ".lock",
                                  "episodes.parquet", "checkpoints"])
def test_resume_through_a_linked_file_touches_nothing_outside(stored, capsys, name):
    """The probe: `log.jsonl -> outside/victim.txt` got event lines appended on --resume,
    `checkpoints -> outside/ckdir` was read and written; so for each of a run's files."""
    root, path, outside = stored
    if name == "log.jsonl":
        (path / name).unlink()
        (path / name).symlink_to(outside / "victim.txt")
    else:
        shutil.move(path / name, outside / name)  # the real thing, outside the runs folder
        (path / name).symlink_to(outside / name)
    before = _snapshot(outside)
    code, err = _cli(capsys, "--root", str(root), "run", "ipd_pg", "--resume", "r", "--quiet")
    _one_line(code, err)
    assert "symbolic link" in err
    assert _snapshot(outside) == before


def test_a_linked_checkpoint_is_not_loaded_or_written(stored, capsys):
    root, path, outside = stored
    shutil.copy(path / "checkpoints" / "last.pt", outside / "x.pt")
    (path / "checkpoints" / "last.pt").unlink()
    (path / "checkpoints" / "last.pt").symlink_to(outside / "x.pt")
    before = _snapshot(outside)
    code, err = _cli(capsys, "--root", str(root), "run", "ipd_pg", "--resume", "r", "--quiet")
    _one_line(code, err)
    with pytest.raises(ScenarioError, match="symbolic link"):
        runner.run("ipd_pg", resume="r", progress=False, root=root)
    from econsim.model import load_trainer

    with pytest.raises(ScenarioError, match="symbolic link"):
        load_trainer("r", root=root)
    assert _snapshot(outside) == before


def test_a_linked_export_folder_or_table_is_not_written_or_read(stored, capsys):
    root, path, outside = stored
    (outside / "exportdir").mkdir()
    (path / "export").symlink_to(outside / "exportdir")
    code, err = _cli(capsys, "--root", str(root), "export", "r")
    _one_line(code, err)
    assert list((outside / "exportdir").iterdir()) == []
    (path / "export").unlink()
    shutil.move(path / "episodes.parquet", outside / "secret.parquet")
    (path / "episodes.parquet").symlink_to(outside / "secret.parquet")
    code, err = _cli(capsys, "--root", str(root), "export", "r", "--out",
                     str(root.parent / "out"))
    _one_line(code, err)
    assert not (root.parent / "out").exists()
    with pytest.warns(StoreWarning, match="episodes.parquet is a symbolic link"):
        assert store.runs(root).empty


def test_export_never_writes_through_a_link_inside_the_export_folder(stored, capsys):
    root, path, outside = stored
    (path / "export").mkdir()
    (path / "export" / "r-episodes.csv").symlink_to(outside / "victim.txt")
    code, err = _cli(capsys, "--root", str(root), "export", "r")
    _one_line(code, err)
    assert (outside / "victim.txt").read_text() == "precious\n"


def test_listing_runs_deletes_nothing_but_our_own_leftovers(stored, capsys):
    root, path, outside = stored
    dead = _dead_pid()
    # the probe: a linked checkpoints folder with a temp-like file in it
    shutil.move(path / "checkpoints", outside / "ckdir")
    (path / "checkpoints").symlink_to(outside / "ckdir")
    for name in (".precious.tmp-999999", f".last.pt.tmp-{dead}"):
        (outside / "ckdir" / name).write_bytes(b"keep")
        _old(outside / "ckdir" / name)
    # files and folders in the root and in non-run folders that look like temporary files
    notarun = root / "notarun"
    notarun.mkdir()
    keep = [root / ".precious.tmp-999999", root / f".r.tmp-{dead}",
            notarun / f".data.tmp-{dead}", notarun / f".run.json.tmp-{dead}"]
    for p in keep:
        p.write_bytes(b"keep")
        _old(p)
    # a hidden folder named like a half-made run but holding someone's files
    other = root / f".r2.tmp-{dead}"
    other.mkdir()
    (other / "thesis.tex").write_text("keep")
    _old(other)
    # a link named like our temporary file in a usable run folder
    (outside / "linked-target").write_text("keep")
    _old(outside / "linked-target")
    os.symlink(outside / "linked-target", path / f".run.json.tmp-{dead}")
    _old(path / f".run.json.tmp-{dead}")
    before = _snapshot(outside)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        store.runs(root)
        store.query("select count(*) from episodes", root)
    assert cli.main(["--root", str(root), "list", "runs"]) == 0
    capsys.readouterr()
    assert _snapshot(outside) == before
    assert all(p.exists() for p in keep) and (other / "thesis.tex").exists()
    assert (path / f".run.json.tmp-{dead}").is_symlink()


def test_the_lock_is_never_taken_through_a_link(tmp_path):
    (tmp_path / "victim").write_text("precious\n")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").symlink_to(tmp_path / "victim")
    with pytest.raises(ScenarioError, match="cannot take its lock"):
        files.lock_folder(folder, "run 'x'")
    assert (tmp_path / "victim").read_text() == "precious\n"


def test_an_atomic_write_never_writes_through_a_planted_temporary_link(tmp_path):
    (tmp_path / "victim").write_text("precious\n")
    target = tmp_path / "run" / "run.json"
    target.parent.mkdir()
    files.temp_path(target).symlink_to(tmp_path / "victim")
    files.write_text(target, "{}")
    assert (tmp_path / "victim").read_text() == "precious\n"
    assert target.read_text() == "{}" and not files.temp_path(target).exists()


def test_a_log_jsonl_linked_during_a_run_is_not_appended_to(stored):
    root, path, outside = stored
    (path / "log.jsonl").unlink()
    (path / "log.jsonl").symlink_to(outside / "victim.txt")
    with pytest.raises(ScenarioError, match="symbolic link"):
        runner._event(path, "eval", iteration=1)
    assert (outside / "victim.txt").read_text() == "precious\n"
