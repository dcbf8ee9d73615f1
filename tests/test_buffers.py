"""econsim.core.buffers.Recycler: an array comes back only when nobody else holds it."""

import copy
import pickle

import numpy as np
import torch

from econsim.core.buffers import Recycler


def test_an_array_is_reused_only_once_nothing_else_refers_to_it():
    r = Recycler(keep=3)
    a = r.empty((4, 5), np.float32)
    assert r.empty((4, 5), np.float32) is not a  # ``a`` still held
    ident = id(a)
    b = r.empty((4, 5), np.float32)  # the array of the line above, no longer held
    assert b is not a and len(r._arrays) == 2
    del a, b
    assert {id(r.empty((4, 5), np.float32)) for _ in range(3)} <= {id(x) for x in r._arrays}
    assert ident in {id(x) for x in r._arrays} and len(r._arrays) == 2
    held = r.empty((2, 2), np.float32)
    view = held[0]
    assert r.empty((2, 2), np.float32) is not held  # ``held`` itself
    del held
    again = r.empty((2, 2), np.float32)
    assert again.base is None and not np.shares_memory(again, view)  # the view keeps it
    tensor = torch.from_numpy(r.empty((3,), np.float64))
    assert not np.shares_memory(r.empty((3,), np.float64), tensor.numpy())
    assert r.empty((4, 5), np.float64).dtype == np.float64  # shape and dtype both match


def test_at_most_keep_arrays_are_kept_and_copies_start_empty():
    r = Recycler(keep=2)
    held = [r.empty((i + 1,), np.int64) for i in range(5)]
    assert len(r._arrays) == 2 and r._arrays[0] is held[-1]
    assert copy.deepcopy(r)._arrays == [] and pickle.loads(pickle.dumps(r))._arrays == []
