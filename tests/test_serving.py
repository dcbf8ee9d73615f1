"""The workbench listens on 127.0.0.1 unless the user asks otherwise: `make app`, a plain
`streamlit run app.py` from the repository (.streamlit/config.toml) and the README agree."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _make_app(*args: str) -> str:
    """The command `make app` would run (make -n prints it without running anything)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "app", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=30, check=True).stdout
    [line] = [ln for ln in out.splitlines() if "streamlit run app.py" in ln]
    return line


def test_make_app_binds_localhost_unless_asked():
    assert re.search(r"--server\.address 127\.0\.0\.1( |$)", _make_app())
    assert "--server.address 0.0.0.0" in _make_app("APP_ADDRESS=0.0.0.0")


def test_plain_streamlit_run_from_the_repository_binds_localhost():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    code = ("from streamlit import config; config.get_config_options(force_reparse=True); "
            "print(config.get_option('server.address'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "127.0.0.1"


def test_readme_says_how_to_serve_it_deliberately():
    readme = (ROOT / "README.md").read_text()
    assert "http://127.0.0.1:8501" in readme and "make app APP_ADDRESS=" in readme
    for line in readme.splitlines():  # every way of starting it says where it listens
        if "streamlit run" in line:
            assert any(k in line for k in ("--server.address", "127.0.0.1", "make app",
                                           "config.toml")), line
