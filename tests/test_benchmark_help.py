"""Every benchmark script and every ``econsim`` sub-command prints its ``--help`` and exits 0
(argparse formats help strings with ``%``, so a bare ``%`` in one only fails here)."""
import argparse
import importlib
from pathlib import Path

import pytest

from econsim import cli

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in {"__init__", "common"})


def test_the_benchmark_scripts_are_found():
    assert {"cm3", "hsd", "sumo_merge"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_help_prints(capsys, name):
    module = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


def test_every_cli_command_help_prints(capsys):
    (sub,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(sub.choices) > 3
    for command in [None, *sub.choices]:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["--help"] if command is None else [command, "--help"])
        assert exit_.value.code == 0, command
        assert capsys.readouterr().out.startswith("usage:"), command
