"""Every shipped scenario reproduces its reference numbers (``tests/reference.py``) bit for bit:
a refactoring must not move any learner's numbers. On another CPU instruction set than the one
the reference was written on, the last bits may differ and three iterations of a meta-gradient
learner carry them on (measured AVX2 against AVX512: up to 3e-5 of a tensor's absolute sum;
two processors that both report AVX512 differ too, so ``reference.cpu`` adds their flags);
where a file holds no fingerprint of this processor (``other_cpus``, see ``tests.reference``)
the numbers must agree to ``CROSS_CPU`` = 1e-4: a metric relative to itself, a state
tensor's sum and absolute sum relative to its absolute sum (a sum that cancels to near 0 has
no relative precision)."""

import json

import numpy as np
import pytest

from econsim import scenario as scenario_mod
from tests import reference

NAMES = scenario_mod.names()
CROSS_CPU = 1e-4


def _floats(values: list[str]) -> np.ndarray:
    return np.array([float.fromhex(v) for v in values])


def _same(name: str, where: str, want: list[str], got: list[str], exact: bool,
          scale: float | None = None) -> None:
    """``scale``: a state tensor's absolute sum, the yardstick of its sums across CPUs."""
    if exact:
        assert got == want, f"{name}: {where} changed: {_floats(got)} != {_floats(want)}"
    elif scale is None:
        np.testing.assert_allclose(_floats(got), _floats(want), rtol=CROSS_CPU, atol=1e-7,
                                   err_msg=f"{name}: {where}")
    else:
        np.testing.assert_allclose(_floats(got), _floats(want), rtol=0,
                                   atol=CROSS_CPU * scale + 1e-7, err_msg=f"{name}: {where}")


def test_every_reference_file_is_a_shipped_scenario():
    files = sorted(p.stem for p in reference.FOLDER.glob("*.json"))
    assert set(files) <= set(NAMES), f"reference files of no scenario: {set(files) - set(NAMES)}"


@pytest.mark.parametrize("name", NAMES)
def test_numbers_are_the_reference_numbers(name):
    """(A scenario without a reference file fails: write it with ``python -m tests.reference
    --write NAME`` on the code before a refactoring.)"""
    file = reference.path(name)
    assert file.exists(), f"{name}: no reference numbers ({file}); see tests/reference.py"
    want, exact = reference.expected(json.loads(file.read_text()))
    got = reference.fingerprint(name)
    assert len(got["metrics"]) == len(want["metrics"])
    for i, (w, g) in enumerate(zip(want["metrics"], got["metrics"], strict=True)):
        assert sorted(g) == sorted(w), f"{name}: row {i} reports other metrics"
        for k in w:
            _same(name, f"row {i} metric {k}", w[k], g[k], exact)
    assert sorted(got["state"]) == sorted(want["state"]), f"{name}: other state entries"
    for k, w in want["state"].items():  # [sum, absolute sum]
        _same(name, f"state {k}", w, got["state"][k], exact, scale=_floats(w)[1])


def test_a_processor_with_its_own_fingerprint_is_compared_exactly(monkeypatch):
    monkeypatch.setattr(reference, "cpu", lambda: "AVX2 here")
    own, other = {"metrics": [1]}, {"metrics": [2]}
    assert reference.expected({"cpu": "AVX2 here", **own}) == ({"cpu": "AVX2 here", **own},
                                                                  True)
    data = {"cpu": "AVX512 there", **own, "other_cpus": {"AVX2 here": other}}
    assert reference.expected(data) == (other, True)
    data = {"cpu": "AVX512 there", **own, "other_cpus": {"AVX2 elsewhere": other}}
    assert reference.expected(data) == (data, False)
