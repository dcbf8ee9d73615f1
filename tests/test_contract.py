"""The trainer contract and the learner registry (learners.contract, learners.registry)."""

import pytest

import learners
from learners.brains import PaysIncentives, TeamBrain
from learners.contract import TrainerConfig, TrainerTraits
from learners.registry import register_algorithm


def test_every_algorithm_declares_the_contract():
    for name in learners.algorithm_names():
        cls = learners.trainer_class(name)
        assert issubclass(cls, TrainerTraits) and issubclass(cls.Config, TrainerConfig), name
        assert learners.default_kind(name) in cls.Config.kinds, name
        assert not (cls.plans_taxes and cls.takes_mechanism), name


def test_tax_planners_share_one_base():
    planners = {n for n in learners.algorithm_names() if learners.trainer_class(n).plans_taxes}
    assert planners == {"metagrad-tax", "dual-rl-tax"}


def test_a_name_is_registered_once():
    cls = learners.trainer_class("pg")
    with pytest.raises(ValueError, match="registered twice"):
        register_algorithm("pg")(type("Other", (cls,), {}))
    with pytest.raises(ValueError, match="unknown algorithm"):
        learners.trainer_class("nope")


def test_paying_brains_declare_it():
    assert issubclass(TeamBrain, PaysIncentives)


@pytest.mark.parametrize("name", ["gtb_metagrad", "gtb_dualrl"])
def test_a_learned_planner_is_a_tax_mechanism_with_a_schedule(name):
    import numpy as np

    from econsim.model import EconModel
    from mechanisms.tax import TaxMechanism
    from tests.reference import tiny

    sc = tiny(name)
    trainer = sc.make_trainer([3])
    mech = trainer.tax_mechanism(0)
    assert isinstance(mech, TaxMechanism)
    assert mech.schedule().rate.isna().all()  # nothing set yet
    model = EconModel(sc, seed=3, mechanism=mech)
    model.step()
    sched = mech.schedule()
    assert list(sched.lower) == list(sc.make_game().cutoffs)
    assert np.allclose(sched.rate, model.tax_rates)


def test_registration_checks_the_contract():
    from pydantic import BaseModel

    class Plain:  # neither traits nor a TrainerConfig
        class Config(BaseModel):
            agents: list[str] | None = None
            batch: int = 1

    with pytest.raises(TypeError, match="must derive from learners.contract.TrainerTraits"):
        register_algorithm("plain")(Plain)

    class NoBatch(TrainerTraits):
        class Config(TrainerConfig):
            agents: list[str] | None = None

    with pytest.raises(TypeError, match=r"missing: batch"):
        register_algorithm("no-batch")(NoBatch)
    assert "plain" not in learners.algorithm_names()


@pytest.mark.parametrize("name, per_batch", [
    ("er21_lio", 2),  # tau and tau-hat (Algorithm 2)
    ("asym_lio1ep_pg", 1),  # 1-episode LIO: the outer loss on tau itself
    ("cleanup7_lio", 2),
    ("cleanup7_ac", 1),
    ("cleanup7_metagrad", 1),  # pipelined: tau <- tau-hat
    ("gtb_flat30", 1),
])
def test_episodes_per_iteration_counts_the_episodes_played(name, per_batch):
    """The declared count matches the episodes the game starts in an iteration (after the
    first, where MetaGrad plays its first tau as well)."""
    from tests.reference import tiny

    trainer = tiny(name).make_trainer([0, 1])
    trainer.iterate()
    started = []
    reset = trainer.game.reset

    def counting(n, *args, **kwargs):
        started.append(n)
        return reset(n, *args, **kwargs)

    trainer.game.reset = counting
    trainer.iterate()
    assert sum(started) == len(trainer.seeds) * trainer.episodes_per_iteration()
    assert trainer.episodes_per_iteration() == per_batch * trainer.cfg.batch
