"""Scenario files: every shipped one validates; bad input is refused with one line, exit 2."""

import tomllib

import pytest

from econsim import cli, scenario
from econsim.errors import ScenarioError


@pytest.mark.parametrize("name", scenario.names())
def test_shipped_scenarios_validate_and_build(name):
    sc = scenario.load(name)
    trainer = sc.make_trainer([0])
    assert sc.make_game().n_agents == trainer.N
    again = scenario.from_dict(tomllib.loads(sc.to_toml()))  # the resolved form round-trips
    assert again.resolved() == sc.resolved()


BASE = tomllib.loads((scenario.SCENARIO_DIR / "er21_lio.toml").read_text())


@pytest.mark.parametrize(("patch", "message"), [
    ({"algorithm": {"name": "lio", "lr": -1}}, "algorithm.lr: -1 is not allowed"),
    ({"algorithm": {"name": "lio", "lrr": 1}}, "algorithm.lrr: unknown field (allowed: agents"),
    ({"algorithm": {"name": "lioo"}}, "algorithm.name: 'lioo' is not allowed (allowed: "),
    ({"env": {"name": "escap"}},
     "env.name: 'escap' is not allowed (allowed: checkers, cleanup, escape_room"),
    ({"env": {"name": "escape_room", "n_agents": 2, "n_required": 2}}, "must be below"),
    ({"env": {"name": "escape_room", "n_agents": float("nan")}}, "env.n_agents: nan"),
    ({"seeds": [1, 1]}, "seeds: [1, 1] is not allowed: seeds must be distinct"),
    ({"train": {"iterations": 0}}, "train.iterations: 0 is not allowed"),
    ({"bogus": 1}, "bogus: unknown field (allowed: name, description, seeds"),
    ({"algorithm": {"name": "lio", "agents": ["lio"]}}, "lists 1 agents but escape_room has 2"),
    ({"algorithm": {"name": "lio", "epsilon": {"start": 2}}}, "algorithm.epsilon.start: 2"),
])
def test_bad_scenarios_one_line(patch, message):
    data = {**BASE, **patch}
    with pytest.raises(ScenarioError) as err:
        scenario.from_dict(data, "x.toml")
    text = str(err.value)
    assert "\n" not in text and text.startswith("x.toml: ")
    assert message in text, text


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        scenario.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ScenarioError, match="bad.toml: not valid TOML"):
        scenario.load(bad)


def test_cli_refuses_bad_file_with_exit_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text((scenario.SCENARIO_DIR / "er21_lio.toml").read_text()
                   .replace("lr = 1e-4", "lr = -1e-4"))
    root = tmp_path / "runs"
    code = cli.main(["--root", str(root), "run", str(bad), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "algorithm.lr: -0.0001 is not allowed" in err
    assert not root.exists()
    assert cli.main(["--root", str(root), "run", "er21_lio", "--seeds", "x"]) == 2
    assert not root.exists()
