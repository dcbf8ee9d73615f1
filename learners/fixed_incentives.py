"""Fixed incentives: a central designer that pays a constant amount per action type.

The policy baseline for incentive design (Diss §6.3.2 compares learned designers against
what a planner could state by hand): every time an agent takes action ``a`` it receives
``incentives[a]`` on top of its extrinsic reward (eq. 6.2 with a constant ``mu``), paid by the
designer and never charged to an agent.

Composition: ``FixedIncentiveTrainer`` = ``FixedDesigner`` (a table, nothing to learn) + the
independent PG agents (``learners.pg.PGAgents``) + the designer plumbing of
``learners.designer`` (reports ``extrinsic``, ``incentives`` paid, ``collective`` =
extrinsic - incentives, ``offer_<action>``). One iteration is ``PGTrainer``'s: play a batch
under the fixed incentives, one PG step of every agent.

Example (Escape Room): ``incentives = { lever = 1.5 }`` pays 1.5 for pulling the lever.
"""

from __future__ import annotations

import torch
from pydantic import Field

from econsim.bounds import MAX_LIST, Coefficient, Text
from learners.designer import Designer, DesignerConfig, DesignerTrainer, incentive_types
from learners.nets import Params
from learners.registry import register_algorithm


class FixedIncentiveConfig(DesignerConfig):
    """Agents as in ``DesignerConfig``; the designer is a fixed table, nothing to learn."""

    incentives: dict[Text, Coefficient] = Field(
        default_factory=dict, max_length=MAX_LIST,
        description="incentive paid per action name (missing: 0), each in [0, 1e6]")


class FixedDesigner(Designer):
    """The designer component of a constant table ``incentives[type]``."""

    def __init__(self, game, cfg: FixedIncentiveConfig, seeds: list[int], view) -> None:
        super().__init__(game, cfg, seeds, view)
        self.table = torch.tensor([cfg.incentives.get(a, 0.0) for a in view.types],
                                  dtype=view.dtype)

    def init_eta(self, gens: list[torch.Generator]) -> Params:
        return {"none": torch.zeros(len(gens), 1, requires_grad=True)}  # nothing to learn

    def offers(self, inputs, extra, rng) -> torch.Tensor:
        return self.table.expand(*inputs.shape[:-1], -1)


@register_algorithm("fixed-incentives")
class FixedIncentiveTrainer(DesignerTrainer):
    """Independent PG agents under a constant incentive per action type."""

    Config = FixedIncentiveConfig
    Designer = FixedDesigner

    def __init__(self, game, config: FixedIncentiveConfig, seeds: list[int]) -> None:
        types = incentive_types(game)
        unknown = sorted(set(config.incentives) - set(types))
        if unknown:
            raise ValueError(f"algorithm.incentives: unknown action type {unknown[0]!r} for "
                             f"{game.name} (allowed: {', '.join(types)})")
        super().__init__(game, config, seeds)
