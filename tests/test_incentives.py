"""Transfers between agents (eq. 5.1): conservation and numpy/torch agreement."""

import numpy as np
import torch
from hypothesis import given as given_data
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mechanisms.incentives import apply_transfers, given, others, received


@st.composite
def rewards_and_transfers(draw):
    n = draw(st.integers(2, 6))
    batch = draw(st.integers(1, 4))
    finite = st.floats(-10, 10, allow_nan=False)
    rewards = draw(arrays(np.float64, (batch, n), elements=finite))
    pay = draw(arrays(np.float64, (batch, n, n), elements=st.floats(0, 5, allow_nan=False)))
    pay[:, np.arange(n), np.arange(n)] = 0.0  # nobody pays itself
    return rewards, pay


@settings(max_examples=60, deadline=None)
@given_data(rewards_and_transfers())
def test_charged_transfers_conserve_total_reward(data):
    rewards, pay = data
    total = apply_transfers(rewards, pay, charge_giver=True)
    assert np.allclose(total.sum(-1), rewards.sum(-1))
    assert np.allclose(received(pay).sum(-1), given(pay).sum(-1))


@settings(max_examples=60, deadline=None)
@given_data(rewards_and_transfers())
def test_uncharged_transfers_add_what_is_paid(data):
    rewards, pay = data
    total = apply_transfers(rewards, pay, charge_giver=False)
    assert np.allclose(total.sum(-1) - rewards.sum(-1), pay.sum((-2, -1)))
    assert (total >= rewards - 1e-12).all()  # incentives are non-negative
    same = apply_transfers(torch.from_numpy(rewards), torch.from_numpy(pay), False)
    assert np.allclose(same.numpy(), total)


def test_others_excludes_self():
    o = others(4)
    assert o.shape == (4, 3)
    assert all(i not in row for i, row in enumerate(o.tolist()))
