"""``benchmarks/cleanup.py`` on a tiny budget: the split table, the training curves' CSV
gathering seeds of separate invocations, the PNG."""

from __future__ import annotations

import pandas as pd
import torch

from benchmarks import cleanup as bench


def test_split_needs_one_cleaner_and_another_harvester():
    dol = pd.DataFrame({"scenario": "s", "seed": [0, 0, 1, 1, 2, 2], "agent": [0, 1] * 3,
                        "waste_cleaned": [25.0, 1.0, 25.0, 0.0, 30.0, 19.0],
                        "apples": [0.0, 21.0, 30.0, 5.0, 0.0, 19.5]})
    out = bench.splits(dol)
    assert out.split.tolist() == [True, False, False]  # seed 1: the cleaner's own apples
    assert out.cleaner.tolist() == [0, 0, 0] and out.harvested.tolist() == [21.0, 5.0, 19.5]


def test_cleanup_benchmark_runs_on_a_tiny_budget(tmp_path):
    args = ["--scenarios", "cleanup7_lio", "--iterations", "2", "--root", str(tmp_path / "runs"),
            "--docs", str(tmp_path), "--quiet", "--seeds"]
    threads = torch.get_num_threads()
    try:
        df, dol = bench.main([*args, "0"])
        bench.main([*args, "1"])
    finally:
        torch.set_num_threads(threads)  # the benchmark uses one
    assert df.seed.tolist() == [0] and set(dol.agent) == {0, 1}
    curve = pd.read_csv(tmp_path / "cleanup7_lio_training.csv")
    assert sorted(set(curve.seed)) == [0, 1] and len(set(curve.run)) == 2
    assert {"collective", "cleaned", "harvested", "paid"} <= set(curve.columns)
    ag = pd.read_parquet(tmp_path / "runs" / df.run_id.iloc[0] / "agents.parquet")
    train = ag[ag.phase == "train"]
    last = train[train.iteration == train.iteration.max()]
    row = curve[(curve.seed == 0) & (curve.iteration == last.iteration.iloc[0])].iloc[0]
    assert row.collective == last.apples.sum() and row.cleaned == last.waste_cleaned.max()
    assert (tmp_path / "cleanup7_lio_training.png").stat().st_size > 1000
