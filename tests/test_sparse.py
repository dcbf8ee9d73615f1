"""learners.sparse: mostly-zero rows through a first layer give the dense product's numbers
(forward, weight and bias gradients), and PPO trains the same with and without them."""

import functools

import numpy as np
import pytest
import torch

from learners import nets, sparse


def _rows(P: int, n: int, k: int, density: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(P, n, k, generator=g) * (torch.rand(P, n, k, generator=g) < density)
    x[0, 0] = 0  # an empty row
    return x


@functools.cache
def gtb_minibatch() -> tuple[int, int, int, int]:
    """The first layer's product in PPO's update with ``gtb_flat30``'s settings: seeds,
    rows of a minibatch, inputs, units (3, 400, 1,200, 128 as shipped)."""
    from econsim import scenario

    sc = scenario.load("gtb_flat30")
    cfg, game = sc.trainer_config(), sc.make_game()
    rows = game.max_steps * cfg.batch * game.n_agents // cfg.minibatches
    return len(sc.seeds), rows, int(np.prod(game.observation_space.shape)), cfg.hidden[0]


def _gtb_rule_known() -> bool:
    """Whether this machine's blocking is reproduced for GTB's product (the kernels run)."""
    return sparse.block_size(*gtb_minibatch()) is not None


def _layer(P: int, k: int, m: int, bias: bool, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(P, k, m, generator=g).requires_grad_(True)
    b = torch.randn(P, 1, m, generator=g).requires_grad_(True) if bias else None
    return w, b


def test_rows_keep_every_non_zero_and_dense_inputs_stay_dense():
    x = _rows(2, 30, 70, 0.1)
    rows = sparse.SparseRows.from_dense(x)
    assert rows.shape == (2, 30, 70)
    assert int(rows.nnz.sum()) == int((x != 0).sum())
    assert torch.equal(rows.dense(), x)
    picked = (torch.arange(2)[:, None], torch.tensor([[3, 0, 7], [29, 1, 1]]))
    assert torch.equal(rows[picked].dense(), x[picked])
    assert isinstance(sparse.rows_of(x), sparse.SparseRows)
    assert sparse.rows_of(_rows(2, 30, 70, 0.6)).__class__ is torch.Tensor  # too dense
    with sparse.dense_only():
        assert sparse.rows_of(x) is x


@pytest.mark.parametrize("kc", [16, 50, 192, 10_000])
def test_kernels_compute_the_product_and_its_weight_gradient(kc):
    """Whatever the block size, the kernels form x w + b and x^T g (to rounding)."""
    x = _rows(3, 230, 300, 0.15)
    w, b = _layer(3, 300, 40, True)
    g = torch.randn(3, 230, 40, generator=torch.Generator().manual_seed(2))
    r = sparse.SparseRows.from_dense(x)
    args = r.cols.numpy(), r.vals.numpy(), r.nnz.numpy()
    out = sparse._forward(*args, w.detach().numpy(), b.detach().numpy(), True, kc)
    expect = (x.double() @ w.detach().double() + b.detach().double()).float()
    assert torch.allclose(torch.from_numpy(out), expect, atol=1e-4)
    gw = sparse._weight_grad(*args, g.numpy(), 300, kc)
    assert torch.allclose(torch.from_numpy(gw), (x.double().transpose(1, 2) @ g.double())
                          .float(), atol=1e-4)


def _both(x: torch.Tensor, P: int, k: int, m: int, bias: bool, g: torch.Tensor,
          w_change=None):
    """Forward values and gradients through the dense rows and through ``SparseRows``."""
    results = []
    for rows in (x, sparse.SparseRows.from_dense(x)):
        w, b = _layer(P, k, m, bias)
        if w_change is not None:
            with torch.no_grad():
                w_change(w)
        out = nets.bmm(rows, w, b)
        out.backward(g)
        results.append((out, w.grad, None if b is None else b.grad))
    return results


@pytest.mark.parametrize("P,n,k,m,bias", [
    ("gtb", None, None, None, True),  # gtb_minibatch(): three blocks of rows
    (2, 200, 1200, 64, True),  # 208 padded rows: two halves in the weight gradient
    (2, 40, 300, 32, True),  # 304 padded columns: two halves in the forward
    (3, 37, 1200, 50, True), (2, 5, 1200, 7, False), (1, 1, 1200, 16, False),
    (3, 500, 200, 64, True)])
def test_the_same_numbers_as_the_dense_product(P, n, k, m, bias):
    """Forward values and gradients equal ``nets.bmm`` on the dense rows exactly; where this
    machine's blocking is reproduced, through the kernels."""
    if P == "gtb":
        P, n, k, m = gtb_minibatch()
    x = _rows(P, n, k, 0.09)
    g = torch.randn(P, n, m, generator=torch.Generator().manual_seed(3))
    (dense, dw, db), (out, w, b) = _both(x, P, k, m, bias, g)
    assert torch.equal(out, dense) and torch.equal(w, dw)
    assert db is None or torch.equal(b, db)
    if _gtb_rule_known():
        assert sparse.block_size(P, n, k, m, bias) is not None, "the kernels should run"
        fresh = nets.bmm(sparse.SparseRows.from_dense(x), *_layer(P, k, m, bias))
        assert type(fresh.grad_fn).__name__ == "_FirstLayerBackward"


def test_non_finite_weights_and_gradients_spread_as_in_the_dense_product():
    """0 x NaN is NaN: a NaN weight reaches every row of a dense product, a NaN in the output
    gradient every weight; the layer then runs as the dense one does."""
    same = dict(rtol=0, atol=0, equal_nan=True)
    P, n, k, m = 2, 300, 1200, 32
    x = _rows(P, n, k, 0.09)
    g = torch.randn(P, n, m, generator=torch.Generator().manual_seed(4))
    poison = lambda w: w[1, 5, 3].fill_(float("nan"))  # noqa: E731
    (dense, dw, db), (out, w, b) = _both(x, P, k, m, True, g, poison)
    assert int(dense.isnan().sum()) == n  # every row of member 1, column 3
    torch.testing.assert_close(out, dense, **same)
    torch.testing.assert_close(w, dw, **same)
    g[0, 7, 2] = float("inf")
    (dense, dw, db), (out, w, b) = _both(x, P, k, m, True, g)
    assert int(dw.isnan().sum() + dw.isinf().sum()) == k  # column 2 of every input
    torch.testing.assert_close(w, dw, **same)
    torch.testing.assert_close(b, db, **same)


def test_the_kernels_run_where_the_blocking_is_reproduced():
    if not _gtb_rule_known():
        pytest.skip("this BLAS build's blocking is not reproduced here: the layer runs dense")
    P, n, k, m = gtb_minibatch()
    w, b = _layer(P, k, m, True)
    x = _rows(P, n, k, 0.09)
    before = sparse.flops()
    out = nets.bmm(sparse.SparseRows.from_dense(x), w, b)
    assert type(out.grad_fn).__name__ == "_FirstLayerBackward"
    assert sparse.flops() - before == 2 * m * int((x != 0).sum())  # multiply-adds of non-zeros


def _leaves(state, prefix=""):
    """Every leaf of a (nested) state dict, by path."""
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, (list, tuple)):
        items = enumerate(state)
    else:
        return {prefix: state}
    return {k: v for key, val in items for k, v in _leaves(val, f"{prefix}{key}.").items()}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("name", ["gtb_flat30", "gtb_metagrad", "gtb_dualrl"])
def test_gtb_trains_the_same_with_sparse_and_dense_inputs(name):
    """PPO on GTB (one minibatch of 50 steps x 2 worlds x 4 agents = 400 rows: three blocks
    of rows in the weight gradient), and the tax planners built on it, reach the same state
    bit for bit."""
    from econsim import scenario

    data = scenario.load(name).model_dump()
    data["env"].update(max_steps=50, period_length=10)
    data["algorithm"].update(batch=2, minibatches=1, epochs=2)
    sc = scenario.from_dict(data)
    seeds = [0, 1]

    def train():
        trainer = sc.make_trainer(seeds)
        for _ in range(2):
            trainer.iterate()
        return trainer, _leaves(trainer.state_dict())

    before = sparse.flops()
    trainer, fast = train()
    used = sparse.flops() > before
    with sparse.dense_only():
        _, slow = train()
    assert fast.keys() == slow.keys()
    assert sum(isinstance(v, torch.Tensor) for v in fast.values()) >= len(trainer.params)
    assert all(_same(fast[k], slow[k]) for k in slow)
    rows = trainer.game.max_steps * trainer.cfg.batch * trainer.N  # one minibatch
    first = trainer.params["pi.w0"]
    assert used or sparse.block_size(len(seeds), rows, *first.shape[1:]) is None
