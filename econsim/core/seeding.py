"""Everything random in econsim derives from one integer seed.

``streams(seed)`` splits one seed into independent named streams (environment, learner
initialisation, action sampling) with numpy's SeedSequence, so adding a new consumer of
randomness never shifts the numbers another consumer sees.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


def make_rng(seed: int, stream: str = "env") -> np.random.Generator:
    """A numpy Generator for one named ``stream`` of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _key(stream)]))


def torch_generator(seed: int, stream: str = "torch") -> torch.Generator:
    """A torch CPU Generator for one named ``stream`` of ``seed``."""
    g = torch.Generator()
    state = np.random.SeedSequence([int(seed), _key(stream)]).generate_state(2, dtype=np.uint32)
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g
