"""Reference numbers of every shipped scenario on a tiny budget, to prove a refactoring changes
no learner's numbers.

``fingerprint(name)`` trains the scenario shrunk by :func:`tiny` on seeds 0 and 1 for three
iterations, evaluates it on two episodes and returns every reported number (hex floats) and,
per floating tensor of the trainer's state, its sum and its sum of absolute values.
``tests/data/reference/<scenario>.json`` holds the fingerprint of each scenario, written with
the code of its day; ``tests/test_reference_numbers.py`` compares. A new scenario gets its
file with ``--write NAME`` (existing files are left alone unless named). Results differ in
the last bits across processors (numpy's and torch's vector code), and a few learners carry
such a difference into a different sampled action within three iterations, so a file also
holds the fingerprints of other processors under ``other_cpus`` (``cpu()`` -> fingerprint),
added with ``--add-cpu`` from the same code on another machine: each processor it knows is
compared bit for bit.

    .venv/bin/python -m tests.reference --write              # scenarios without a file
    .venv/bin/python -m tests.reference --write ipd_lio      # after a change MEANT to move it
    .venv/bin/python -m tests.reference --add-cpu gtb_us_federal   # this processor's, too

:func:`tiny` and :func:`small` are also the test suite's one way to shrink a shipped scenario
(``from tests.reference import small, tiny``); ``tiny`` must keep returning what the reference
numbers were written with.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from econsim import scenario as scenario_mod

FOLDER = Path(__file__).parent / "data" / "reference"
SEEDS = [0, 1]
ITERATIONS = 3


def tiny(name: str, **algorithm) -> scenario_mod.Scenario:
    """A shipped scenario shrunk to a few cheap steps (short GTB and Cleanup episodes)."""
    data = scenario_mod.load(name).model_dump()
    env = data["env"]
    if env["name"] == "gtb":
        env.update(max_steps=20, period_length=10)
    if env["name"] == "cleanup":
        env.update(max_steps=8)
    if env["name"] in ("navigation", "checkers"):
        env.update(max_steps=10)
    if env["name"] == "sumo_merge":
        env.update(timeout=10)
    if env["name"] == "sts2":
        env.update(max_steps=20)
    alg = data["algorithm"]
    if "batch" in alg:
        alg["batch"] = min(alg["batch"], 2)
    if env["name"] in ("navigation", "checkers", "sumo_merge"):  # few small updates; CM3
        # reaches stage 2
        alg.update(updates=2, minibatch=16)
        if "stage1" in alg:
            alg["stage1"].update(iterations=1, updates=2, minibatch=16)
    if env["name"] == "sts2":  # few small updates and buffers; HSD's decoder steps and its
        # alpha evaluation happen within three iterations
        alg.update(updates=2, minibatch=16)
        for k in ("replay", "replay_high", "replay_low"):
            if k in alg:
                alg[k] = min(alg[k], 1000)
        if "high_updates" in alg:
            alg.update(high_updates=2, decoder_batch=8)
            alg["alpha"].update(every=2, episodes=2)
    alg.update(algorithm)
    return scenario_mod.from_dict(data)


def small(name: str = "ipd_pg", iterations: int = 2, *, log_every: int = 1,
          eval_every: int | None = None, eval_episodes: int = 2,
          checkpoint_every: int | None = None, short: bool = False, ppo: bool = False,
          **algorithm) -> scenario_mod.Scenario:
    """A shipped scenario, every default written out, on a small training budget.

    ``eval_every`` and ``checkpoint_every`` default to ``iterations`` (one evaluation and one
    checkpoint, at the end). ``short``: shrunk by :func:`tiny` first (short GTB and Cleanup
    episodes, batch at most 2). ``ppo``: a cheap PPO learner (batch 1, one epoch of two
    minibatches, one hidden layer of 16). ``algorithm``: further learner settings.
    """
    data = (tiny(name) if short else scenario_mod.load(name)).resolved()
    if ppo:
        data["algorithm"].update(batch=1, epochs=1, minibatches=2, hidden=[16])
    data["algorithm"].update(algorithm)
    data["train"] = {"iterations": iterations, "log_every": log_every,
                     "eval_every": eval_every or iterations, "eval_episodes": eval_episodes,
                     "checkpoint_every": checkpoint_every or iterations}
    return scenario_mod.from_dict(data, name)


def _tensors(state, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if isinstance(state, dict):
        for k, v in state.items():
            out.update(_tensors(v, f"{prefix}{k}."))
    elif isinstance(state, list | tuple):
        for i, v in enumerate(state):
            out.update(_tensors(v, f"{prefix}{i}."))
    elif isinstance(state, torch.Tensor) and state.dtype.is_floating_point:
        out[prefix[:-1]] = state
    return out


def _hex(values) -> list[str]:
    return [float(x).hex() for x in np.asarray(values, dtype=np.float64).ravel()]


def fingerprint(name: str) -> dict:
    """Every reported number of a tiny run of ``name`` and a summary of its learned state."""
    torch.set_num_threads(1)
    trainer = tiny(name).make_trainer(SEEDS)
    rows = [trainer.iterate() for _ in range(ITERATIONS)]
    rows.append(trainer.evaluate(2))
    metrics = [{k: _hex(v) for k, v in sorted(row.items()) if not k.startswith("_")}
               for row in rows]
    state = {k: _hex([float(v.double().sum()), float(v.double().abs().sum())])
             for k, v in sorted(_tensors(trainer.state_dict()).items())}
    return {"metrics": metrics, "state": state}


def cpu() -> str:
    """The vector instruction set torch uses here and a fingerprint of the processor's feature
    flags (results differ in the last bits across either: two machines that both report
    AVX512 gave different last bits on 2026-12-03)."""
    import hashlib

    info = Path("/proc/cpuinfo")
    flags = next((line.split(":", 1)[1].split() for line in
                  (info.read_text().splitlines() if info.exists() else [])
                  if line.startswith("flags")), [])
    digest = hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:12]
    return f"{torch.backends.cpu.get_cpu_capability()} {digest}"


def path(name: str) -> Path:
    """The reference file of scenario ``name``."""
    return FOLDER / f"{name}.json"


def write(names: list[str] | None = None) -> list[str]:
    """Write the reference file of each of ``names`` (default: the shipped scenarios that
    have none); returns the names written."""
    names = names or [n for n in scenario_mod.names() if not path(n).exists()]
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = {"cpu": cpu(), "torch": torch.__version__, "seeds": SEEDS,
                "iterations": ITERATIONS, **fingerprint(name)}
        path(name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return names


def add_cpu(names: list[str]) -> list[str]:
    """Add this processor's fingerprint to the reference file of each of ``names`` (which
    must exist; a file written on this processor is left alone); returns the names added."""
    added = []
    for name in names:
        data = json.loads(path(name).read_text())
        if data["cpu"] == cpu():
            continue
        data.setdefault("other_cpus", {})[cpu()] = fingerprint(name)
        path(name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        added.append(name)
    return added


def expected(data: dict) -> tuple[dict, bool]:
    """The fingerprint to compare with on this processor, and whether exactly: the file's own
    or the one it holds for this processor (exact), else the file's own (to ``CROSS_CPU``)."""
    here = cpu()
    if data["cpu"] == here:
        return data, True
    other = data.get("other_cpus", {})
    return (other[here], True) if here in other else (data, False)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", nargs="*", metavar="NAME",
                   help="write the reference files of these scenarios (none named: those "
                   "without a file)")
    p.add_argument("--add-cpu", nargs="+", metavar="NAME",
                   help="add this processor's fingerprint to these scenarios' files")
    args = p.parse_args()
    if args.write is not None:
        for name in write(args.write):
            print(f"wrote {path(name)}")
    for name in add_cpu(args.add_cpu or []):
        print(f"added {cpu()} to {path(name)}")
