"""Every shipped scenario reproduces its reference numbers (``tests/reference.py``) bit for bit:
a refactoring must not move any learner's numbers. On another CPU instruction set than the one
the reference was written on, the last bits may differ; there the numbers must agree to 1e-5."""

import json

import numpy as np
import pytest

from econsim import scenario as scenario_mod
from tests import reference

DATA = json.loads(reference.PATH.read_text())
EXACT = DATA["cpu"] == reference.cpu()


def _floats(values: list[str]) -> np.ndarray:
    return np.array([float.fromhex(v) for v in values])


def _same(name: str, where: str, want: list[str], got: list[str]) -> None:
    if EXACT:
        assert got == want, f"{name}: {where} changed: {_floats(got)} != {_floats(want)}"
    else:
        np.testing.assert_allclose(_floats(got), _floats(want), rtol=1e-5, atol=1e-7,
                                   err_msg=f"{name}: {where}")


def test_every_shipped_scenario_has_reference_numbers():
    assert sorted(DATA["scenarios"]) == scenario_mod.names()


@pytest.mark.parametrize("name", sorted(DATA["scenarios"]))
def test_numbers_are_the_reference_numbers(name):
    want, got = DATA["scenarios"][name], reference.fingerprint(name)
    assert len(got["metrics"]) == len(want["metrics"])
    for i, (w, g) in enumerate(zip(want["metrics"], got["metrics"], strict=True)):
        assert sorted(g) == sorted(w), f"{name}: row {i} reports other metrics"
        for k in w:
            _same(name, f"row {i} metric {k}", w[k], g[k])
    assert sorted(got["state"]) == sorted(want["state"]), f"{name}: other state entries"
    for k, w in want["state"].items():
        _same(name, f"state {k}", w, got["state"][k])
