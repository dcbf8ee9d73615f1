"""Shared fixtures: tests run single-threaded torch for speed and determinism, and a test run
never changes the repository (tracked files, new files beside them, ./runs).

Shrinking a shipped scenario for a test: ``from tests.reference import small, tiny``.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)


def _git_state() -> dict[str, object] | None:
    """What ``git status`` says of the checkout (tracked changes and untracked files, each with
    its modification time), or None outside a git checkout."""
    if shutil.which("git") is None:
        return None
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "-z"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    state: dict[str, object] = {}
    for entry in filter(None, out.split("\0")):
        path = ROOT / entry[3:]
        try:
            state[entry] = path.stat().st_mtime_ns if path.is_file() else None
        except OSError:
            state[entry] = None
    runs = ROOT / "runs"
    state["./runs"] = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else None
    return state


@pytest.fixture(scope="session", autouse=True)
def repository_untouched(tmp_path_factory):
    """Runs land in a temporary folder unless a test says otherwise ($ECONSIM_RUNS), and the
    session fails if a test changed a tracked file or left a new file in the checkout."""
    before = _git_state()
    saved = os.environ.get("ECONSIM_RUNS")
    os.environ["ECONSIM_RUNS"] = str(tmp_path_factory.mktemp("default_runs"))
    yield
    if saved is None:
        os.environ.pop("ECONSIM_RUNS", None)
    else:
        os.environ["ECONSIM_RUNS"] = saved
    after = _git_state()
    if before is None or after is None:
        return
    changed = sorted(k for k in before.keys() | after.keys()
                     if k not in before or k not in after or before[k] != after[k])
    shots = os.environ.get("ECONSIM_SCREENSHOTS")  # make screenshots: docs/ on purpose
    if shots:
        folder = (ROOT / shots).resolve()
        changed = [k for k in changed if not (ROOT / k[3:]).resolve().is_relative_to(folder)]
    if not changed:
        return
    pytest.fail("the tests changed the repository (tests must write under tmp_path; "
                "screenshots: make screenshots): " + ", ".join(changed[:20]), pytrace=False)
