"""The GTB map: parse a layout file and precompute the static index tables of the kernel.

A map file holds the rows of the grid separated by ``;`` (newlines are ignored), one
character per cell: ``W`` wood source, ``S`` stone source, ``@`` water (impassable), space
empty. The packaged map ``pure_and_mixed_15x15`` is the AI-Economist's
"env-pure_and_mixed-15x15" layout (SPEC §6): 23 wood and 12 stone sources, 21 water cells.

Cells are numbered row-major, ``cell = row * width + col``.

A scenario names its map; it never gives a path. Names are looked up among the packaged maps
and, if the environment variable ``ECONSIM_MAPS`` names a folder, in that folder
(``$ECONSIM_MAPS/<name>.txt``), so a scenario file cannot make econsim read a file elsewhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAPS_DIR = Path(__file__).parent / "maps"
CHARS = {" ": "empty", "W": "wood", "S": "stone", "@": "water"}
# moves: 0 stay, 1 up (row - 1), 2 down (row + 1), 3 left (col - 1), 4 right (col + 1)
MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


MAPS_ENV = "ECONSIM_MAPS"  # a folder of the user's own maps, <name>.txt
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _folders() -> list[Path]:
    """Where map names are looked up: the packaged maps, then ``$ECONSIM_MAPS``."""
    extra = os.environ.get(MAPS_ENV)
    return [MAPS_DIR, *([Path(extra)] if extra else [])]


def map_names() -> list[str]:
    """Maps a scenario may name: the packaged ones and those in ``$ECONSIM_MAPS``."""
    return sorted({p.stem for folder in _folders() for p in folder.glob("*.txt")})


def map_path(name: str) -> Path:
    """The file of map ``name`` (a plain name, never a path; see the module docstring)."""
    if isinstance(name, str) and _NAME.match(name) and ".." not in name:
        for folder in _folders():
            path = folder / f"{name}.txt"
            inside = path.resolve().is_relative_to(folder.resolve())
            if inside and path.is_file():
                return path
    raise ValueError(f"unknown map {str(name)[:80]!r} (allowed: {', '.join(map_names())}; "
                     f"maps of your own: {MAPS_ENV}=FOLDER with FOLDER/<name>.txt)")


def parse_map(text: str) -> np.ndarray:
    """Map text -> ``[H, W]`` array of single characters; ValueError if malformed."""
    rows = [r for r in text.replace("\r", "").replace("\n", "").split(";") if r != ""]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("map rows must be non-empty and of equal length")
    bad = sorted({ch for r in rows for ch in r} - set(CHARS))
    if bad:
        raise ValueError(f"map has unknown characters {bad} (allowed: {sorted(CHARS)})")
    return np.array([list(r) for r in rows])


@dataclass(frozen=True)
class World:
    """Static layout plus lookup tables (flat cell indices) used by the kernel."""

    grid: np.ndarray  # [H, W] characters
    height: int
    width: int
    water: np.ndarray  # [H, W] bool
    source: np.ndarray  # [H, W] int8: -1 none, 0 wood source, 1 stone source
    src_cells: np.ndarray  # [n_src] flat cells of all sources (wood and stone)
    src_type_flat: np.ndarray  # [H*W] int64: -1 none, 0 wood, 1 stone
    nbr: np.ndarray  # [H*W, 5] target cell of each move (0 stay, up, down, left, right); -1 blocked

    @property
    def n_cells(self) -> int:
        return self.height * self.width

    def counts(self) -> dict[str, int]:
        return {"wood": int((self.source == 0).sum()), "stone": int((self.source == 1).sum()),
                "water": int(self.water.sum())}

    def corners(self) -> list[tuple[int, int]]:
        """Default starts: top-left, top-right, bottom-left, bottom-right."""
        h, w = self.height - 1, self.width - 1
        return [(0, 0), (0, w), (h, 0), (h, w)]


def load_world(name: str) -> World:
    """Read and index map ``name`` (packaged name or path to a ``.txt`` file)."""
    grid = parse_map(map_path(name).read_text())
    h, w = grid.shape
    water = grid == "@"
    source = np.full((h, w), -1, np.int8)
    source[grid == "W"] = 0
    source[grid == "S"] = 1
    rows, cols = np.divmod(np.arange(h * w), w)
    nbr = np.full((h * w, len(MOVES)), -1, np.int64)
    for k, (dr, dc) in enumerate(MOVES):
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        target = np.where(inside, r * w + c, -1)
        ok = inside & ~water.ravel()[np.clip(target, 0, None)]
        nbr[:, k] = np.where(ok, target, -1)
    src_flat = source.ravel().astype(np.int64)
    return World(grid=grid, height=h, width=w, water=water, source=source,
                 src_cells=np.flatnonzero(src_flat >= 0), src_type_flat=src_flat, nbr=nbr)
