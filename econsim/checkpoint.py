"""Checkpoints that load without running anything from the file.

A checkpoint is ``torch.save`` of plain data only: dicts, lists, tuples, strings, numbers,
booleans, ``None`` and torch tensors, with numpy arrays stored as
``{"__ndarray__": dtype, "shape": [...], "data": <uint8 tensor>}``. It is read back with
``torch.load(weights_only=True)``, whose unpickler refuses every other object (a crafted file
cannot make it call a function), and this module then builds nothing but numpy arrays of
numeric dtypes from the data. Trainers' ``state_dict()`` must therefore hold plain data.

>>> checkpoint.save(path, {"trainer": trainer.state_dict(), "wall_s": 3.0})
>>> trainer.load_state_dict(checkpoint.load(path)["trainer"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from econsim.errors import ScenarioError
from econsim.files import atomic_write

#: bumped whenever what trainers store changes incompatibly (2: per-seed random streams)
FORMAT = 2
_ARRAY = "__ndarray__"
_KINDS = "biuf"  # numpy dtype kinds a checkpoint may hold: bool, int, unsigned, float


def encode(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` as plain data (numpy arrays and scalars converted); TypeError naming the
    place of anything else (a trainer must not put objects in its state)."""
    if obj is None or isinstance(obj, bool | int | float | str | torch.Tensor):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _KINDS:
            raise TypeError(f"{where}: numpy dtype {obj.dtype} cannot be stored")
        raw = np.ascontiguousarray(obj).tobytes()
        data = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.zeros(
            0, dtype=torch.uint8)
        return {_ARRAY: obj.dtype.str, "shape": list(obj.shape), "data": data}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: encode(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(encode(v, f"{where}[{i}]") for i, v in enumerate(obj))
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be stored in a checkpoint "
                    "(plain data, tensors and numpy arrays only)")


def decode(obj: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(obj, dict):
        if _ARRAY in obj:
            dtype = np.dtype(str(obj[_ARRAY]))
            if dtype.kind not in _KINDS:
                raise ValueError(f"numpy dtype {dtype} is not allowed")
            data = obj["data"]
            if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8:
                raise ValueError("array data must be a uint8 tensor")
            shape = tuple(int(n) for n in obj["shape"])
            return np.frombuffer(data.numpy().tobytes(), dtype=dtype).reshape(shape).copy()
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(decode(v) for v in obj)
    return obj


def save(path: str | Path, payload: dict) -> None:
    """Write ``payload`` (plain data) to ``path`` atomically."""
    data = {"format": FORMAT, "payload": encode(payload)}
    atomic_write(Path(path), lambda p: torch.save(data, p))


def load(path: str | Path) -> dict:
    """The payload of the checkpoint at ``path``; ``ScenarioError`` (one line) for a file
    that is not an econsim checkpoint of this format. Nothing in the file is executed."""
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such checkpoint") from None
    except Exception as err:  # the weights-only unpickler refuses code and unknown objects
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ScenarioError(f"{path}: not a loadable econsim checkpoint ({reason[:160]})"
                            ) from None
    if not isinstance(raw, dict) or "payload" not in raw:
        raise ScenarioError(f"{path}: not an econsim checkpoint")
    if raw.get("format") != FORMAT:
        raise ScenarioError(f"{path}: checkpoint format {raw.get('format')!r} is not "
                            f"supported (this econsim reads format {FORMAT}; start a new run)")
    try:
        return decode(raw["payload"])
    except (ValueError, TypeError, KeyError) as err:
        raise ScenarioError(f"{path}: damaged checkpoint ({err})") from None
