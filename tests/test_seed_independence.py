"""A seed's run depends on that seed alone: seed k trained alone equals seed k trained beside
other seeds, bit for bit, for every shipped scenario (every algorithm family) on a tiny budget.
"""

import numpy as np
import pytest
import torch

from econsim import scenario as scenario_mod
from econsim.core import ReplicaRNG
from learners.nets import bmm
from tests.reference import tiny

# reported optimisation diagnostics are batched float32 reductions: equal to rounding only
DIAGNOSTICS = ("loss", "entropy", "grad_norm")


def tensors(state, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every floating-point tensor of a trainer's state dict, by dotted name."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(state, dict):
        for k, v in state.items():
            out.update(tensors(v, f"{prefix}{k}."))
    elif isinstance(state, torch.Tensor) and state.dtype.is_floating_point and state.ndim:
        out[prefix[:-1]] = state
    return out


def block(x: torch.Tensor, r: int, R: int) -> torch.Tensor:
    """Replica ``r``'s block of a stacked tensor (leading dim replica-major)."""
    k = x.shape[0] // R
    return x[r * k:(r + 1) * k]


def play(scenario, seeds: list[int], iterations: int = 3):
    trainer = scenario.make_trainer(seeds)
    rows = [trainer.iterate() for _ in range(iterations)]
    rows.append(trainer.evaluate(2))
    return trainer, rows


def assert_same_replica(scenario, alone: list[int], group: list[int], seed: int = 3) -> None:
    """Seed ``seed`` trains identically within ``alone`` and within ``group``."""
    ra, rb = alone.index(seed), group.index(seed)
    ta, a = play(scenario, alone)
    tb, b = play(scenario, group)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for k, v in x.items():
            if k.startswith("_") or np.ndim(v) == 0:
                continue
            mine, theirs = np.asarray(v)[ra], np.asarray(y[k])[rb]
            if any(t in k for t in DIAGNOSTICS):
                np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6, err_msg=k)
            else:
                assert np.array_equal(mine, theirs, equal_nan=True), (
                    f"{scenario.name}: row {i} metric {k}: {mine} in {alone}, {theirs} in {group}")
    pa, pb = tensors(ta.state_dict()), tensors(tb.state_dict())
    compared = 0
    for k, v in pa.items():
        w = pb[k]
        if (v.shape[0] % len(alone) or w.shape[1:] != v.shape[1:]
                or w.shape[0] // len(group) != v.shape[0] // len(alone)):
            continue
        mine, theirs = block(v, ra, len(alone)), block(w, rb, len(group))
        assert torch.equal(mine, theirs), f"{scenario.name}: {k} differs"
        compared += 1
    assert compared > 0, f"{scenario.name}: no stacked parameters compared"


@pytest.mark.parametrize("name", scenario_mod.names())
def test_seed_alone_equals_seed_among_others(name):
    assert_same_replica(tiny(name), [3], [1, 3])


@pytest.mark.parametrize("name", ["er21_lio", "cleanup7_lio", "gtb_metagrad", "er52_dualrl_c"])
def test_seed_first_or_last_among_others(name):
    """Position in the stack does not matter either (memory alignment of its block)."""
    assert_same_replica(tiny(name), [3, 8, 9], [0, 5, 3])


@pytest.mark.parametrize("name", ["cleanup7_lio", "cleanup7_ac", "cleanup7_metagrad"])
def test_seed_independence_with_the_conv_front_end(name):
    assert_same_replica(tiny(name, conv=True), [3], [1, 3])


def test_seed_independence_over_many_iterations():
    """LIO on Escape Room for 60 iterations: the runs never drift apart (no rounding that
    depends on the neighbours, which would grow chaotically over a long run)."""
    s = tiny("er21_lio")
    ta, tb = s.make_trainer([2]), s.make_trainer([2, 4])
    for _ in range(60):
        ma, mb = ta.iterate(), tb.iterate()
        assert np.array_equal(ma["collective"][0], mb["collective"][0])
    for k, v in tensors(ta.state_dict()).items():
        w = tensors(tb.state_dict())[k]
        if w.shape[0] == 2 * v.shape[0]:
            assert torch.equal(v, w[:v.shape[0]]), k


def test_replica_rng_splits_each_draw_by_replica():
    one = ReplicaRNG.from_seeds([7], "env")
    two = ReplicaRNG.from_seeds([5, 7], "env")
    assert np.array_equal(one.random((3, 4)), two.random((6, 4))[3:])
    assert np.array_equal(one.integers(0, 10, size=5), two.integers(0, 10, size=10)[5:])
    assert np.array_equal(one.permutations(6), two.permutations(6)[1:])
    state = two.get_state()
    first = two.standard_normal((4,))
    two.set_state(state)
    assert np.array_equal(first, two.standard_normal((4,)))
    with pytest.raises(ValueError, match="replica"):
        two.random((3,))  # 3 rows do not split over 2 replicas
    with pytest.raises(ValueError, match="replica"):
        two.random(())


@pytest.mark.parametrize("n,k,m", [(1, 30, 14), (5, 64, 7), (50, 37, 9), (2, 256, 1), (16, 15, 3)])
def test_stacked_matmul_is_the_same_for_any_neighbours(n, k, m):
    """``nets.bmm``: one member's product and gradients do not depend on where it lies in
    the stack or how many members there are (plain ``torch.bmm`` fails this for these
    shapes on AVX-512 CPUs)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, n, k, generator=g, requires_grad=True)
    b = torch.randn(5, k, m, generator=g, requires_grad=True)
    up = torch.randn(5, n, m, generator=g)
    full = bmm(a, b)
    da, db = torch.autograd.grad((full * up).sum(), [a, b])
    for lo, hi in [(0, 1), (3, 4), (1, 3), (2, 5)]:
        sa = a[lo:hi].detach().clone().requires_grad_(True)
        sb = b[lo:hi].detach().clone().requires_grad_(True)
        part = bmm(sa, sb)
        pa, pb = torch.autograd.grad((part * up[lo:hi]).sum(), [sa, sb])
        assert torch.equal(part, full[lo:hi])
        assert torch.equal(pa, da[lo:hi]) and torch.equal(pb, db[lo:hi])
    assert torch.allclose(full, torch.bmm(a, b), atol=1e-5)
