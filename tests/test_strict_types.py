"""Scenario values have their type, not one pydantic can coerce them to (strict models,
econsim.bounds.FINITE): a boolean or a text is no seed, "yes" is no boolean, "0.3" is no
rate; TOML integers still count for float fields."""

import pytest
import tomli_w

from econsim import cli
from econsim import scenario as scenario_mod
from econsim.errors import ScenarioError


def _with(name, path, value):
    data = scenario_mod.load(name).model_dump(exclude_none=True)
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[leaf] = value
    return data


@pytest.mark.parametrize("name, path, value, message", [
    ("ipd_pg", "seeds", [True], "seeds.0: True is not allowed"),
    ("ipd_pg", "seeds", ["0"], "seeds.0: '0' is not allowed"),
    ("ipd_pg", "seeds", [0.0], "seeds.0: 0.0 is not allowed"),
    ("ipd_pg", "algorithm.observe_given", "yes", "algorithm.observe_given: 'yes' is not allowed"),
    ("ipd_pg", "algorithm.observe_given", 1, "algorithm.observe_given: 1 is not allowed"),
    ("ipd_pg", "algorithm.lr", "0.01", "algorithm.lr: '0.01' is not allowed"),
    ("ipd_pg", "algorithm.hidden", ["16"], "algorithm.hidden.0: '16' is not allowed"),
    ("ipd_pg", "train.iterations", "5", "train.iterations: '5' is not allowed"),
    ("ipd_pg", "train.iterations", 5.0, "train.iterations: 5.0 is not allowed"),
    ("gtb_flat30", "mechanism.rate", "0.3", "mechanism.rate: '0.3' is not allowed"),
    ("gtb_flat30", "env.n_agents", "4", "env.n_agents: '4' is not allowed"),
])
def test_loose_types_are_refused(tmp_path, capsys, name, path, value, message):
    with pytest.raises(ScenarioError, match="^x.toml: ") as err:
        scenario_mod.from_dict(_with(name, path, value), "x.toml")
    assert message in str(err.value) and "\n" not in str(err.value)
    file = tmp_path / "x.toml"
    file.write_text(tomli_w.dumps(_with(name, path, value)))
    code = cli.main(["--root", str(tmp_path / "runs"), "run", str(file), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name, path, value", [
    ("ipd_pg", "algorithm.lr", 1),  # a TOML integer for a float field
    ("gtb_flat30", "mechanism.rate", 0),
    ("ipd_pg", "algorithm.observe_given", False),
])
def test_integers_for_floats_and_real_booleans_are_fine(name, path, value):
    scenario_mod.from_dict(_with(name, path, value), "x.toml")
