"""Core contract: the batch-first Game protocol, spaces, seeding and the loop around a game."""

from econsim.core.game import Game, Step, check_actions
from econsim.core.rollout import (
    end_period,
    period_starts,
    reset_done,
    seen_action_size,
    seen_actions,
    start_period,
    watched,
)
from econsim.core.seeding import ReplicaRNG, make_rng, torch_generator
from econsim.core.spaces import Box, Discrete

__all__ = [
    "Box", "Discrete", "Game", "ReplicaRNG", "Step", "check_actions", "end_period", "make_rng",
    "period_starts", "reset_done", "seen_action_size", "seen_actions", "start_period",
    "torch_generator", "watched",
]
