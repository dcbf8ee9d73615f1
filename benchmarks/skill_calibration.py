"""How often ``econsim.skills.contrasts`` calls skills that play alike different.

Simulates seeds whose skills all behave the same (:func:`alike_trace`: each event at one rate
per step for every skill, rates drawn in 0.005-0.2 per event, about 40 steps per skill and
test episode) and counts, per number of test episodes, the seeds where some pair of skills is
called ``distinct`` on some event (nominal: ``1 - level`` = 5%). ``--old`` adds the same count
for the interval of an earlier commit's ``econsim/skills.py`` (``git show REV:econsim/skills.py
> FILE``), side by side on the same simulated seeds.

    .venv/bin/python benchmarks/skill_calibration.py --episodes 30,50,100 --seeds 100
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from econsim import skills  # noqa: E402


def alike_trace(rng: np.random.Generator, episodes: int, skills_n: int = 4) -> pd.DataFrame:
    """A trace of one seed (``seed`` 0) whose ``skills_n`` skills all behave alike."""
    events = [e for e in skills.EVENTS if e not in ("win", "lose", "draw")]
    rate = rng.uniform(0.005, 0.2, len(events))
    steps = rng.poisson(40, (episodes, skills_n)).ravel()
    tr = pd.DataFrame((rng.random((steps.sum(), len(events))) < rate).astype(int),
                      columns=events)
    tr["episode"] = np.repeat(np.repeat(np.arange(episodes), skills_n), steps)
    tr["skill"] = np.repeat(np.tile(np.arange(skills_n), episodes), steps)
    tr["seed"] = 0
    return tr


def false_calls(contrasts, episodes: int, seeds: int, draws: int = 1000) -> int:
    """Simulated seeds ``0..seeds-1`` of ``episodes`` test episodes where ``contrasts`` calls
    some pair of alike skills distinct."""
    return sum(bool(contrasts(alike_trace(np.random.default_rng(r), episodes),
                              draws=draws)["distinct"].any()) for r in range(seeds))


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", default="30,50,100", help="test episodes per seed")
    p.add_argument("--seeds", type=int, default=100, help="simulated seeds per case")
    p.add_argument("--old", help="an earlier econsim/skills.py to compare with")
    a = p.parse_args(argv)
    methods = {"contrasts": skills.contrasts}
    if a.old:
        spec = importlib.util.spec_from_file_location("econsim.skills_old", a.old)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        methods["old"] = old.contrasts
    rows = [{"episodes": int(e), "seeds": a.seeds,
             **{name: false_calls(f, int(e), a.seeds) for name, f in methods.items()}}
            for e in a.episodes.split(",")]
    table = pd.DataFrame(rows)
    print("Seeds whose alike skills were called different (nominal 5%):")
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
