"""Planning a sweep checks seeds and iterations with the rules of a run
(scenario.check_seeds / check_iterations) and reads the scenario file with scenario.load's
file checks, with or without --sweep-id: one line, exit 2, nothing written."""

import pytest

from econsim import cli, scenario, sweep
from econsim.errors import ScenarioError


def _cli(tmp_path, capsys, *argv) -> tuple[int, str]:
    code = cli.main(["--root", str(tmp_path / "runs"), "sweep", *map(str, argv), "--quiet"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("iterations", [10**9, 2.5, True, 0, -1, "3"])
def test_plan_checks_iterations_like_a_run(tmp_path, iterations):
    with pytest.raises(ScenarioError, match=r"^iterations: .* is not allowed") as err:
        sweep.plan("ipd_pg", {"algorithm.lr": [0.01]}, [0], root=tmp_path / "runs",
                   iterations=iterations)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("seeds", [[-1], [True], ["0"], [0, 0], list(range(65)), [2**32], []])
def test_plan_checks_seeds_like_a_run(tmp_path, seeds):
    with pytest.raises(ScenarioError, match=r"^seeds") as err:
        sweep.plan("ipd_pg", {"algorithm.lr": [0.01]}, seeds, root=tmp_path / "runs")
    assert "\n" not in str(err.value)


def test_plan_accepts_what_a_run_accepts(tmp_path):
    tasks, invalid = sweep.plan("ipd_pg", {"algorithm.lr": [0.01, 0.02]}, range(3),
                                root=tmp_path / "runs", iterations=5)
    assert not invalid and [t["seeds"] for t in tasks] == [[0, 1, 2]] * 2
    assert {t["iterations"] for t in tasks} == {5}


@pytest.mark.parametrize("sweep_id", [[], ["--sweep-id", "mine"]])
def test_the_scenario_file_gets_the_file_checks(tmp_path, capsys, sweep_id):
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(scenario.find("ipd_pg").read_bytes() + 'x = "é"\n'.encode("latin-1"))
    huge = tmp_path / "huge.toml"
    huge.write_text("# " + "x" * 2_000_000 + "\n")
    for file, message in [(deep, "deep.toml: arrays or tables nest more than 8 deep"),
                          (latin, "latin1.toml: not UTF-8 text (byte 0xe9"),
                          (huge, "huge.toml: a file larger than 1,000,000 bytes")]:
        code, err = _cli(tmp_path, capsys, file, "--set", "algorithm.lr=0.01", *sweep_id)
        assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs").exists()
