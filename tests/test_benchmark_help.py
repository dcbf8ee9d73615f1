"""Every benchmark script and every ``econsim`` sub-command prints its ``--help`` and exits 0
(argparse formats help strings with ``%``, so a bare ``%`` in one only fails here)."""
import argparse
import importlib
import pathlib

import pytest

from econsim import cli

SCRIPTS = sorted(p.stem for p in pathlib.Path("benchmarks").glob("*.py")
                 if p.stem not in {"__init__", "common"})


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_help_prints(capsys, name):
    module = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_every_cli_command_help_prints(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    (sub,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    commands = sub.choices
    assert len(commands) > 3
    for command in commands:
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--help"])
        assert exit_.value.code == 0, command
    assert "usage:" in capsys.readouterr().out
