"""learners.sparse: mostly-zero rows through a first layer give the dense product's numbers
(forward, weight and bias gradients), and PPO trains the same with and without them."""

import pytest
import torch

from learners import nets, sparse


def _rows(P: int, n: int, k: int, density: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(P, n, k, generator=g) * (torch.rand(P, n, k, generator=g) < density)
    x[0, 0] = 0  # an empty row
    return x


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


@pytest.mark.parametrize("P,n,k,m,bias", [(3, 400, 1200, 128, True), (2, 37, 1201, 50, True),
                                          (1, 1, 300, 16, False), (3, 500, 200, 64, True)])
def test_the_same_numbers_as_the_dense_product(P, n, k, m, bias):
    """Forward values and gradients equal ``nets.bmm`` on the dense rows exactly, through
    the kernels where this machine's blocking is reproduced, else through the dense path."""
    x = _rows(P, n, k, 0.09)
    g = torch.randn(P, n, m, generator=torch.Generator().manual_seed(3))
    w, b = _layer(P, k, m, bias)
    dense = nets.bmm(x, w, b)
    dense.backward(g)
    w2, b2 = _layer(P, k, m, bias)
    out = nets.bmm(sparse.SparseRows.from_dense(x), w2, b2)
    out.backward(g)
    assert torch.equal(out, dense) and torch.equal(w2.grad, w.grad)
    assert b is None or torch.equal(b2.grad, b.grad)


def test_the_kernels_run_where_the_blocking_is_reproduced():
    if sparse.block_size(3, 400, 1200, 128) is None:
        pytest.skip("this BLAS build's blocking is not reproduced here: the layer runs dense")
    w, b = _layer(3, 1200, 128, True)
    before = sparse.flops()
    out = nets.bmm(sparse.SparseRows.from_dense(_rows(3, 400, 1200, 0.09)), w, b)
    assert type(out.grad_fn).__name__ == "_FirstLayerBackward"
    assert sparse.flops() > before


def test_ppo_trains_the_same_with_sparse_and_dense_inputs():
    """GTB's PPO (minibatches of 400 rows: more than one block of rows in the weight
    gradient) reaches bit-identical parameters with the sparse first layer."""
    from econsim import scenario

    data = scenario.load("gtb_flat30").model_dump()
    data["env"].update(max_steps=50, period_length=10)
    data["algorithm"].update(batch=2, minibatches=1, epochs=2)
    sc = scenario.from_dict(data)

    def train():
        trainer = sc.make_trainer([0, 1])
        for _ in range(2):
            trainer.iterate()
        return trainer.params

    before = sparse.flops()
    fast = train()
    used = sparse.flops() > before
    with sparse.dense_only():
        slow = train()
    assert all(torch.equal(fast[k], slow[k]) for k in slow)
    assert used or sparse.block_size(2, 400, 1200, 128) is None
