"""Atomic file writes: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``; a crash leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_table(path: Path, df: pd.DataFrame) -> None:
    """Parquet or CSV by the file's suffix."""
    if path.suffix == ".csv":
        atomic_write(path, lambda p: df.to_csv(p, index=False))
    else:
        atomic_write(path, lambda p: df.to_parquet(p, index=False))
