"""One name rule (econsim.bounds.NAME_RULE) for scenario names, sweep ids and run ids: a
scenario name that validates always makes valid run ids (a run's and a sweep's)."""

import pytest

from econsim import bounds, runner, store, sweep
from econsim import scenario as scenario_mod
from econsim.errors import ScenarioError

BASE = scenario_mod.load("ipd_pg").model_dump()


def _named(name):
    return scenario_mod.from_dict({**BASE, "name": name}, "x.toml")


@pytest.mark.parametrize("name", ["a..b", "..", "a/b", "-a", ".a", "_a", "a b", "", "é",
                                  "a" * (bounds.MAX_NAME + 1), "a\nb"])
def test_names_that_make_no_run_id_are_refused_at_validation(name):
    with pytest.raises(ScenarioError, match=r"^x\.toml: name: ") as err:
        _named(name)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["a", "A.b-c_d", "0x", "a" * bounds.MAX_NAME])
def test_a_valid_name_makes_valid_run_and_sweep_run_ids(name):
    sc = _named(name)
    assert store.check_run_id(runner.new_run_id(sc))
    combos = [{"algorithm.lr": [0.1] * 50, "env.n_agents": i} for i in range(120)]
    for run_id in sweep.run_ids(sweep.new_sweep_id(name), combos):
        assert store.check_run_id(run_id)


@pytest.mark.parametrize("name", ["a", "a..b", "a.b", "-x", "x-", "x y", "a" * 300, 5, None])
def test_scenario_names_and_run_ids_follow_the_same_rule(name):
    as_run_id = bounds.is_plain_name(name)
    try:
        store.check_run_id(name)
        checked = True
    except ScenarioError:
        checked = False
    assert checked == as_run_id
    if isinstance(name, str) and len(name) <= bounds.MAX_NAME:
        try:
            _named(name)
            valid = True
        except ScenarioError:
            valid = False
        assert valid == as_run_id


def test_the_suffix_fits():
    assert bounds.MAX_NAME + bounds.MAX_RUN_SUFFIX <= bounds.RUN_ID_MAX
    assert len(runner.new_run_id(_named("a"))) - 1 <= bounds.MAX_RUN_SUFFIX
