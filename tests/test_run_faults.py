"""Faults during a run: training that diverges stops with one line and a failed run.json; an
error or interruption is recorded, never left as `running`; bad input or a failure before
the first iteration leaves no folder; a run trained by a live process cannot be resumed a
second time; leftovers of dead processes are removed; killing a sweep ends its workers."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import torch

from econsim import checkpoint, cli, runner, scenario, store
from econsim.errors import ScenarioError, StoreWarning, TrainingDiverged
from tests.reference import small

DIVERGED = (r"^training diverged at iteration (\d+): (parameter )?[\w.]+ is (nan|inf) "
            r"\(lower the learning rates\)$")


def _write(sc: scenario.Scenario, path: Path) -> Path:
    path.write_text(tomli_w.dumps(sc.resolved()))
    return path


def _manifest(root: Path) -> dict:
    [path] = list(root.glob("*/run.json"))
    return json.loads(path.read_text())


def _slow_run(tmp_path: Path, root: Path, *extra: str) -> subprocess.Popen:
    """`econsim run` of a long tiny scenario in its own process group."""
    path = _write(small("ipd_pg", 1_000_000, checkpoint_every=2), tmp_path / "slow.toml")
    return subprocess.Popen([sys.executable, "-m", "econsim.cli", "--root", str(root), "run",
                             str(path), "--seeds", "0", "--quiet", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _poison(monkeypatch, at: int, how: str) -> None:
    """Trainers whose iteration ``at`` goes wrong in the way ``how`` says."""
    real = scenario.Scenario.make_trainer

    def make(self, seeds):
        trainer = real(self, seeds)
        iterate = trainer.iterate

        def poisoned():
            if trainer.iteration + 1 == at and how == "raise":
                raise RuntimeError("boom\nsecond line")
            if trainer.iteration + 1 == at and how == "interrupt":
                raise KeyboardInterrupt
            metrics = iterate()
            if trainer.iteration == at and how == "metric":
                metrics["policy_loss"] = np.array([0.5] * (len(seeds) - 1) + [np.inf])
            if trainer.iteration == at and how == "param":
                with torch.no_grad():
                    trainer.params["pi.b1"][0] = float("nan")
            return metrics

        trainer.iterate = poisoned
        return trainer

    monkeypatch.setattr(scenario.Scenario, "make_trainer", make)


# ------------------------------------------------------------------ non-finite numbers


def test_a_huge_learning_rate_is_refused_before_anything_runs(tmp_path, capsys):
    """What once trained all-NaN networks and exited 0 is now a validation error."""
    data = small("ipd_pg", 50, checkpoint_every=2).resolved()
    data["algorithm"]["lr"] = 1e30
    path = tmp_path / "fast.toml"
    path.write_text(tomli_w.dumps(data))
    root = tmp_path / "runs"
    code = cli.main(["--root", str(root), "run", str(path), "--seeds", "0,1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "algorithm.lr: 1e+30 is not allowed" in err
    assert not root.exists() or not any(root.iterdir())


def test_a_diverging_run_fails_with_one_line_and_a_failed_run(tmp_path, capsys, monkeypatch):
    """Bounded settings can still diverge: the CLI stops at the iteration, exit 2, run.json
    says failed with the same line, no checkpoint holds the NaN."""
    _poison(monkeypatch, 5, "param")
    root = tmp_path / "runs"
    path = _write(small("ipd_pg", 50, log_every=25, checkpoint_every=2), tmp_path / "fast.toml")
    code = cli.main(["--root", str(root), "run", str(path), "--seeds", "0,1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("econsim: error: ")
    message = err.removeprefix("econsim: error: ").strip()
    assert re.match(DIVERGED, message), message
    info = _manifest(root)
    assert info["status"] == "failed" and info["error"] == message
    assert info["iterations_done"] < 50
    ckpt = root / info["run_id"] / "checkpoints" / "last.pt"
    if ckpt.is_file():  # a checkpoint is only written after the parameters were checked
        state = checkpoint.load(ckpt)["trainer"]
        assert runner.first_nonfinite(state) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)  # a failed run is a usable run
        assert store.runs(root).status.tolist() == ["failed"]


@pytest.mark.parametrize(("how", "expect"), [
    ("metric", "training diverged at iteration 4: policy_loss is inf (lower the learning "
               "rates)"),
    ("param", "training diverged at iteration 3: parameter params.pi.b1 is nan (lower the "
              "learning rates)"),
])
def test_divergence_names_the_iteration_and_the_number(tmp_path, monkeypatch, how, expect):
    monkeypatch.setattr(runner._Watch, "BUDGET", float("inf"))  # tensors read every iteration
    _poison(monkeypatch, 4 if how == "metric" else 3, how)
    with pytest.raises(TrainingDiverged) as err:
        runner.run(small("ipd_pg", 6, checkpoint_every=2), seeds=[0, 1], progress=False,
                   root=tmp_path, run_id="r")
    assert str(err.value) == expect
    info = _manifest(tmp_path)
    assert info["status"] == "failed" and info["error"] == expect


def test_nan_parameters_between_checkpoints_are_found_at_the_latest_at_the_next(
        tmp_path, monkeypatch):
    """With no time for checks between checkpoints, parameters turned NaN at iteration 3
    are reported at the checkpoint of iteration 4, which is not written."""
    monkeypatch.setattr(runner._Watch, "BUDGET", 0.0)
    _poison(monkeypatch, 3, "param")
    with pytest.raises(TrainingDiverged) as err:
        runner.run(small("ipd_pg", 6, checkpoint_every=2), seeds=[0, 1], progress=False,
                   root=tmp_path, run_id="r")
    msg = str(err.value)  # by then the NaN has spread to other parameters of pi
    assert msg.startswith("training diverged at iteration 4: parameter params.pi.")
    assert msg.endswith(" is nan (lower the learning rates)")


def test_nan_parameters_that_break_an_evaluation_are_named_as_the_divergence(tmp_path,
                                                                           monkeypatch):
    """Parameters turned NaN at an evaluation step: the evaluation's own error (here a
    sampling error) is reported as the divergence, before any checkpoint is written."""
    _poison(monkeypatch, 4, "param")
    real = scenario.Scenario.make_trainer

    def make(self, seeds):
        trainer = real(self, seeds)

        def evaluate(episodes):
            if not torch.isfinite(trainer.params["pi.b1"]).all():
                raise RuntimeError("probability tensor contains either inf, nan or element < 0")
            return type(trainer).evaluate(trainer, episodes)

        trainer.evaluate = evaluate
        return trainer

    monkeypatch.setattr(scenario.Scenario, "make_trainer", make)
    with pytest.raises(TrainingDiverged) as err:
        runner.run(small("ipd_pg", 8, eval_every=4, checkpoint_every=4), seeds=[0, 1],
                   progress=False, root=tmp_path, run_id="r")
    assert str(err.value) == ("training diverged at iteration 4: parameter params.pi.b1 is "
                              "nan (lower the learning rates)")
    assert not (tmp_path / "r" / "checkpoints" / "last.pt").exists()  # the first is due at 4


def test_an_error_or_interruption_is_recorded_never_left_running(tmp_path, monkeypatch):
    _poison(monkeypatch, 3, "raise")
    with pytest.raises(RuntimeError, match="boom"):
        runner.run(small("ipd_pg", 6, checkpoint_every=2), seeds=[0], progress=False,
                   root=tmp_path / "a", run_id="r")
    info = _manifest(tmp_path / "a")
    assert info["status"] == "failed" and info["error"] == "RuntimeError: boom"
    _poison(monkeypatch, 3, "interrupt")
    with pytest.raises(KeyboardInterrupt):
        runner.run(small("ipd_pg", 6, checkpoint_every=2), seeds=[0], progress=False,
                   root=tmp_path / "b", run_id="r")
    info = _manifest(tmp_path / "b")
    assert info["status"] == "interrupted" and info["iterations_done"] == 2
    assert runner.latest_unfinished("ipd_pg", tmp_path / "b") == "r"
    monkeypatch.undo()
    done = runner.run("ipd_pg", resume=True, progress=False, root=tmp_path / "b")
    assert _manifest(tmp_path / "b")["status"] == "finished" and done.run_id == "r"
    assert "error" not in _manifest(tmp_path / "b")


@pytest.mark.slow
def test_sigterm_marks_a_cli_run_interrupted(tmp_path):
    root = tmp_path / "runs"
    proc = _slow_run(tmp_path, root)
    _wait_for(lambda: list(root.glob("*/checkpoints/last.pt")), what="a checkpoint")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130, proc.stderr.read()
    assert "interrupted" in proc.stderr.read()
    assert _manifest(root)["status"] == "interrupted"


# ------------------------------------------------------------------ nothing left behind


def test_bad_input_and_early_failures_leave_no_folder(tmp_path, monkeypatch, capsys):
    root = tmp_path / "runs"
    for bad in (0, -1):
        with pytest.raises(ScenarioError, match=r"iterations: -?\d+ is not allowed: .* 1$"):
            runner.run(small("ipd_pg", 6, checkpoint_every=2), seeds=[0], progress=False,
                       root=root, iterations=bad)
    assert cli.main(["--root", str(root), "run", "ipd_pg", "--iterations", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not root.exists()

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "write_text", disk_full)  # while making the folder
    with pytest.raises(OSError, match="No space"):
        runner.run(small("ipd_pg", 6, checkpoint_every=2), seeds=[0], progress=False, root=root)
    assert not root.exists()
    monkeypatch.undo()
    root.mkdir()

    def broken_event(run_dir, kind, **fields):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(runner, "_event", broken_event)  # after the folder, before training
    with pytest.raises(OSError, match="I/O error"):
        runner.run(small("ipd_pg", 6, checkpoint_every=2), seeds=[0], progress=False, root=root)
    assert list(root.iterdir()) == []


# ------------------------------------------------------------------ locks and leftovers


@pytest.mark.slow
def test_a_second_resume_of_a_live_run_is_refused(tmp_path, capsys):
    """About 10 s: a real `econsim run` in another process holds the run."""
    root = tmp_path / "runs"
    proc = _slow_run(tmp_path, root)
    try:
        _wait_for(lambda: list(root.glob("*/run.json")), what="the run folder")
        rid = _manifest(root)["run_id"]
        code = cli.main(["--root", str(root), "run", "ipd_pg", "--resume", rid, "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1
        assert f"run {rid!r} is already running (process {proc.pid})" in err
        with pytest.raises(ScenarioError, match="already running"):
            runner.run("ipd_pg", resume=True, progress=False, root=root)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # its owner is dead: the lock is stale and the run resumes
    assert _manifest(root)["status"] == "running"
    done = runner.run("ipd_pg", resume=rid, progress=False, root=root, iterations=4)
    assert done.run_id == rid and _manifest(root)["status"] == "finished"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    root = tmp_path / "runs"
    run = runner.run(small("ipd_pg", 2), seeds=[0], progress=False, root=root, run_id="r")
    dead, old = _dead_pid(), time.time() - 3600
    stale = [run.path / f".episodes.parquet.tmp-{dead}",
             run.path / "checkpoints" / f".last.pt.tmp-{dead}"]
    # not econsim's: a file in the root, a name a run never writes
    foreign = [root / f".other.tmp-{dead}", run.path / f".notes.txt.tmp-{dead}"]
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    live = run.path / f".agents.parquet.tmp-{writer.pid}"  # a writer still at work
    for path in [*stale, *foreign, live]:
        path.write_bytes(b"half")
        os.utime(path, (old, old))
    (root / f".half-made-run.tmp-{dead}").mkdir()  # a run folder being created, then killed
    os.utime(root / f".half-made-run.tmp-{dead}", (old, old))
    assert store.runs(root).run_id.tolist() == ["r"]
    assert not any(p.exists() for p in stale) and live.exists()
    assert all(p.exists() for p in foreign)
    assert not (root / f".half-made-run.tmp-{dead}").exists()
    # resuming removes them at once, whatever their age (the run is locked)
    fresh = run.path / "checkpoints" / f".last.pt.tmp-{dead}"
    fresh.write_bytes(b"half")
    runner.run("ipd_pg", resume="r", progress=False, root=root, iterations=3)
    assert not fresh.exists()
    assert store.clean(run.path, min_age_s=0) == []  # the live one stays
    assert live.exists() and all(p.exists() for p in foreign)
    writer.kill()
    writer.wait()
    assert store.clean(run.path) == [live]


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("how", ["kill", "term"])
@pytest.mark.slow
def test_stopping_a_sweep_ends_its_workers(tmp_path, how):
    """kill -9 (or SIGTERM) of `econsim sweep` while two runs train: no worker is left
    after 10 s, and the runs are marked interrupted. About 20 s (two spawned workers)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    path = _write(small("ipd_pg", 1_000_000, checkpoint_every=2), tmp_path / "slow.toml")
    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "econsim.cli", "--root", str(root), "sweep",
                             str(path), "--seeds", "0", "--set", "algorithm.lr=0.001,0.002",
                             "--workers", "2", "--sweep-id", "s", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    workers: list[int] = []
    try:
        _wait_for(lambda: len(list(root.glob("s-*/checkpoints/last.pt"))) == 2, 120,
                  "both runs to train")
        workers = [p for p in _children(proc.pid)
                   if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) >= 2, workers
        if how == "kill":
            proc.kill()
        else:
            proc.terminate()
        code = proc.wait(timeout=30)
        assert code == (-signal.SIGKILL if how == "kill" else 130), proc.stderr.read()
        deadline = time.time() + 10
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not [w for w in workers if _alive(w)], "workers outlived the sweep"
    finally:  # never leave a worker behind, even when the test fails
        for w in {*workers, *_children(proc.pid)}:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    statuses = {json.loads(p.read_text())["status"] for p in root.glob("s-*/run.json")}
    assert statuses == {"interrupted"}
