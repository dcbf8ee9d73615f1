"""Core contract: the batch-first Game protocol, spaces, seeding and rollouts."""

from econsim.core.game import Game, Step, check_actions
from econsim.core.rollout import (
    Recorder,
    Trajectory,
    discounted_returns,
    reset_done,
    rollout,
    seen_action_size,
    seen_actions,
    watched,
)
from econsim.core.seeding import ReplicaRNG, make_rng, torch_generator
from econsim.core.spaces import Box, Discrete

__all__ = [
    "Box", "Discrete", "Game", "Recorder", "ReplicaRNG", "Step", "Trajectory", "check_actions",
    "discounted_returns", "reset_done", "make_rng", "rollout", "seen_action_size", "seen_actions",
    "torch_generator", "watched",
]
