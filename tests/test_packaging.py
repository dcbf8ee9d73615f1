"""The wheel is the product: it holds every package, the shipped scenarios and the GTB maps,
and an installed copy runs a shipped scenario from any folder (not only from this checkout).

The wheel is built offline (``pip wheel --no-build-isolation``) from a copy of the sources in
a temporary folder, so the checkout gets no ``build/`` or ``*.egg-info``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from econsim import scenario
from econsim.envs.gtb import world

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("econsim", "learners", "mechanisms")
SOURCES = ("pyproject.toml", "README.md", *PACKAGES)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                           "--no-build-isolation", "--no-index", "-q", "-w", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [built] = out.glob("econsim-*.whl")
    return built


def _files(folder: Path, pattern: str) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in folder.glob(pattern)
            if "__pycache__" not in p.parts}


def test_the_wheel_holds_the_packages_scenarios_and_maps(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    scenarios = _files(scenario.SCENARIO_DIR, "*.toml")
    assert len(scenarios) == len(scenario.names()) > 40
    assert scenario.SCENARIO_DIR == ROOT / "econsim" / "scenarios"
    assert scenarios <= names, sorted(scenarios - names)
    maps = _files(world.MAPS_DIR, "*.txt")
    assert maps and maps <= names, sorted(maps - names)
    for package in PACKAGES:
        modules = _files(ROOT / package, "**/*.py")
        assert f"{package}/__init__.py" in modules and modules <= names, sorted(modules - names)
    tops = {n.split("/")[0] for n in names}
    assert tops == {*PACKAGES, wheel.name.split("-py3")[0] + ".dist-info"}, tops
    entry = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/"
                                        "entry_points.txt").decode()
    assert "econsim = econsim.cli:main" in entry


@pytest.mark.slow
def test_an_installed_wheel_runs_a_shipped_scenario_outside_the_checkout(wheel, tmp_path):
    """A fresh venv gets the wheel (and nothing of this checkout); its `econsim` lists and runs
    a shipped scenario in a folder outside the repository. The dependencies (torch, ...) come
    from the interpreter running the tests, through a .pth file, so nothing is downloaded."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the test interpreter's own packages (a venv's are not "system" site packages); a plain
    # path line, so that folder's .pth files (an editable econsim) are not processed
    (site / "_econsim_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-deps", "--force-reinstall", "--no-index", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "ECONSIM_RUNS", "PYTHONHOME", "VIRTUAL_ENV")}

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)

    where = run(str(python), "-c", "import json, econsim, econsim.scenario as s, learners, "
                "mechanisms; print(json.dumps([econsim.__file__, str(s.SCENARIO_DIR), "
                "learners.__file__, mechanisms.__file__]))")
    assert where.returncode == 0, where.stderr[-3000:]
    for path in json.loads(where.stdout):
        assert Path(path).is_relative_to(site), (path, site)  # the installed copy
        assert not Path(path).is_relative_to(ROOT)

    econsim = str(venv / "bin" / "econsim")
    listed = run(econsim, "list", "scenarios")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "ipd_lio" in listed.stdout and "gtb_us_federal" in listed.stdout

    done = run(econsim, "run", "ipd_lio", "--iterations", "10", "--seeds", "0", "--quiet")
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    [folder] = (work / "runs").iterdir()
    assert folder.name.startswith("ipd_lio")
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["status"] == "finished" and manifest["iterations_done"] == 10
    assert (folder / "episodes.parquet").is_file() and (folder / "scenario.toml").is_file()
