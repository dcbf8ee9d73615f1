"""Agent brains: networks, differentiable updates, and the learning algorithms of the Diss.

``ALGORITHMS`` maps a scenario's ``algorithm.name`` to (trainer class path, default agent
kind). A trainer is built as ``Trainer(game, Trainer.Config(**params), seeds)`` and offers
``iterate()``, ``evaluate(episodes)``, ``epsilon()``, ``state_dict()``/``load_state_dict()``
and ``metrics`` as numpy arrays per replica (seed).
"""

from __future__ import annotations

import importlib

ALGORITHMS: dict[str, tuple[str, str]] = {
    "pg": ("learners.pg:PGTrainer", "pg"),
    "pg-d": ("learners.pg:PGTrainer", "pg-d"),
    "pg-c": ("learners.pg:PGTrainer", "pg-c"),
    "lio": ("learners.lio:LIOTrainer", "lio"),
    "ac": ("learners.ac:ACTrainer", "ac"),
    "ac-d": ("learners.ac:ACTrainer", "ac-d"),
    "ac-c": ("learners.ac:ACTrainer", "ac-c"),
    "lio-ac": ("learners.lio_ac:LIOACTrainer", "lio"),
    "ia": ("learners.ia:IATrainer", "ia"),
    "cen": ("learners.cen:CenTrainer", "cen"),
    "lola-d": ("learners.lola:LOLATrainer", "lola-d"),
    "lola-c": ("learners.lola:LOLATrainer", "lola-c"),
    "metagrad": ("learners.metagrad:MetaGradTrainer", "pg"),
    "dual-rl-d": ("learners.dual_rl:DualRLDTrainer", "pg"),
    "dual-rl-c": ("learners.dual_rl:DualRLCTrainer", "pg"),
    "metagrad-ac": ("learners.designer_ac:MetaGradACTrainer", "ac"),
    "dual-rl-c-ac": ("learners.designer_ac:DualRLCACTrainer", "ac"),
    "fixed-incentives": ("learners.fixed_incentives:FixedIncentiveTrainer", "pg"),
    "ppo": ("learners.ppo:PPOTrainer", "ppo"),
    "dual-rl-tax": ("learners.dual_rl_tax:DualRLTaxTrainer", "ppo"),
    "metagrad-tax": ("learners.metagrad_gtb:MetaGradTaxTrainer", "ppo"),
}


def algorithm_names() -> list[str]:
    return sorted(ALGORITHMS)


def trainer_class(name: str) -> type:
    """The trainer class registered for algorithm ``name`` (ValueError naming the allowed)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r} (allowed: {', '.join(algorithm_names())})")
    module, cls = ALGORITHMS[name][0].split(":")
    return getattr(importlib.import_module(module), cls)


def default_kind(name: str) -> str:
    return ALGORITHMS[name][1]
