"""Shared fixtures: tests run single-threaded torch for speed and determinism."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
