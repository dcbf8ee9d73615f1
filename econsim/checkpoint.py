"""Checkpoints that load without running anything from the file.

A checkpoint is ``torch.save`` of plain data only: dicts, lists, tuples, strings, numbers,
booleans, ``None`` and torch tensors, with numpy arrays stored as
``{"__ndarray__": dtype, "shape": [...], "data": <uint8 tensor>}``. It is read back with
``torch.load(weights_only=True)``, whose unpickler refuses every other object (a crafted file
cannot make it call a function), and this module then builds nothing but numpy arrays of
numeric dtypes from the data. Trainers' ``state_dict()`` must therefore hold plain data.

>>> checkpoint.save(path, {"trainer": trainer.state_dict(), "wall_s": 3.0})
>>> checkpoint.restore(trainer, checkpoint.load(path)["trainer"])

A file that is not such a checkpoint is refused by :func:`load` with one line; a well-formed
checkpoint whose content does not fit the trainer (missing entries, wrong types, shapes or
dtypes) is refused by :func:`restore` with one line naming the entry (callers wrap it in
:func:`mismatch`: ``checkpoint <path> does not match this run: ...``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from econsim.errors import ScenarioError, short
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


def decode(obj: Any, where: str = "payload") -> Any:
    """Inverse of :func:`encode`; ``ValueError`` naming the entry (``where``) for an array
    that cannot be rebuilt (a dtype that is not numeric, data that is not bytes, a shape
    that does not fit the data)."""
    if isinstance(obj, dict):
        if _ARRAY in obj:
            try:
                dtype = np.dtype(str(obj[_ARRAY]))
                if dtype.kind not in _KINDS:
                    raise ValueError(f"numpy dtype {dtype} is not allowed")
                data = obj["data"]
                if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8:
                    raise ValueError("array data must be a uint8 tensor")
                shape = tuple(int(n) for n in obj["shape"])
                return np.frombuffer(data.numpy().tobytes(), dtype=dtype).reshape(shape).copy()
            except Exception as err:  # e.g. a shape of [inf]: OverflowError
                raise ValueError(f"{where}: not an array ({reason(err)})") from None
        return {k: decode(v, f"{where}.{short(str(k), 60)}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(decode(v, f"{where}[{i}]") for i, v in enumerate(obj))
    return obj


def save(path: str | Path, payload: dict) -> None:
    """Write ``payload`` (plain data) to ``path`` atomically."""
    data = {"format": FORMAT, "payload": encode(payload)}
    atomic_write(Path(path), lambda p: torch.save(data, p))


def load(path: str | Path) -> dict:
    """The payload of the checkpoint at ``path`` (a dict); ``ScenarioError`` (one line) for
    a file that is not an econsim checkpoint of this format. Nothing in the file is
    executed, and nothing is printed (torch's warnings about the file are silenced)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": not for users
            warnings.simplefilter("ignore")
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such checkpoint") from None
    except Exception:  # the weights-only unpickler refuses code and unknown objects
        raise ScenarioError(
            f"{path}: not a loadable econsim checkpoint: the file is damaged or holds "
            "something other than plain data and tensors (econsim never runs code from a "
            "checkpoint; start a new run)") from None
    if not isinstance(raw, dict) or "payload" not in raw:
        raise ScenarioError(f"{path}: not an econsim checkpoint")
    if raw.get("format") != FORMAT:
        raise ScenarioError(f"{path}: checkpoint format {short(repr(raw.get('format')))} is "
                            f"not supported (this econsim reads format {FORMAT}; start a new "
                            "run)")
    try:
        payload = decode(raw["payload"])
    except Exception as err:  # any content: a shape of [inf], a bad dtype, deep nesting...
        raise mismatch(path, err) from None
    if not isinstance(payload, dict):
        raise mismatch(path, ValueError(f"payload is a {type(payload).__name__}, not a table"))
    return payload


# --------------------------------------------------------------------------- restoring


def reason(err: BaseException) -> str:
    """One short line saying what ``err`` is about (for checkpoint messages)."""
    if isinstance(err, KeyError):
        return f"entry {short(repr(err.args[0]) if err.args else '?')} is missing"
    lines = str(err).strip().splitlines()
    text = short(lines[0] if lines else "", 200)
    return text if isinstance(err, ValueError) and text else \
        f"{type(err).__name__}{': ' + text if text else ''}"


def mismatch(path: str | Path, err: BaseException) -> ScenarioError:
    """The one-line error for a checkpoint at ``path`` whose content does not fit the run."""
    return ScenarioError(f"checkpoint {path} does not match this run: {reason(err)}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _difference(expected: Any, got: Any, where: str) -> str | None:
    """Where ``got`` (a trainer's state after loading a checkpoint) departs from
    ``expected`` (the same trainer's state before): a missing entry, another type, a tensor
    of another shape or dtype, an array of another dtype or number of dimensions. None
    entries and list lengths of ``expected`` may change (they fill up as a trainer trains).
    Iterative, so any nesting is safe."""
    stack = [(expected, got, where)]
    while stack:
        exp, val, at = stack.pop()
        if exp is None:
            continue
        if isinstance(exp, torch.Tensor | np.ndarray):  # tensors: same shape; arrays: ndim
            tensor = isinstance(exp, torch.Tensor)
            kind = "tensor" if tensor else "array"
            if not isinstance(val, type(exp)):
                return f"{at} is a {type(val).__name__}, not {'a' if tensor else 'an'} {kind}"
            layout = ((lambda x: f"shape {list(x.shape)}") if tensor
                      else (lambda x: f"{x.ndim} dimension(s)"))
            if val.dtype != exp.dtype or layout(val) != layout(exp):
                return (f"{at} is a {val.dtype} {kind} of {layout(val)}, not "
                        f"{exp.dtype} of {layout(exp)}")
        elif isinstance(exp, dict):
            if not isinstance(val, dict):
                return f"{at} is a {type(val).__name__}, not a table"
            for key, sub in exp.items():
                if key not in val:
                    return f"{at}.{short(str(key), 60)} is missing"
                stack.append((sub, val[key], f"{at}.{short(str(key), 60)}"))
        elif isinstance(exp, list | tuple):
            if not isinstance(val, list | tuple):
                return f"{at} is a {type(val).__name__}, not a list"
            if len(val) == len(exp):
                stack.extend((e, v, f"{at}[{i}]") for i, (e, v) in
                             enumerate(zip(exp, val, strict=True)))
        elif isinstance(exp, bool | str):
            if type(val) is not type(exp):
                return f"{at} is {short(repr(val), 60)}, not a {type(exp).__name__}"
        elif _number(exp):
            if not _number(val) or (isinstance(val, float) and not math.isfinite(val)
                                    and math.isfinite(exp)):
                return f"{at} is {short(repr(val), 60)}, not a finite number"
            if isinstance(exp, int) and not isinstance(val, int):
                return f"{at} is {short(repr(val), 60)}, not an integer"
    return None


def restore(trainer: Any, state: Any) -> None:
    """``trainer.load_state_dict(state)`` for the ``trainer`` entry of a checkpoint, checking
    (before and after) that it has the structure of the trainer's own state (see
    :func:`_difference`) and a whole, non-negative ``iteration``. Raises ``ValueError`` (one
    line naming the entry; wrap it with :func:`mismatch`) for a state that does not fit,
    whatever the trainer's own code raised; the trainer must then be discarded."""
    if not isinstance(state, dict):
        raise ValueError(f"trainer is a {type(state).__name__}, not a table")
    before = decode(encode(trainer.state_dict()))
    problem = _difference(before, state, "trainer")  # the clearest message, before loading
    if problem:
        raise ValueError(problem)
    try:
        trainer.load_state_dict(state)
    except Exception as err:  # whatever a wrong state makes the trainer's code raise
        raise ValueError(f"trainer: {reason(err)}") from None
    try:
        after = decode(encode(trainer.state_dict()))
    except Exception as err:
        raise ValueError(f"trainer: {reason(err)}") from None
    problem = _difference(before, after, "trainer")
    if problem:
        raise ValueError(problem)
    iteration = trainer.iteration
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise ValueError(f"trainer.iteration is {short(repr(iteration), 60)}, not a whole "
                         "number >= 0")


def restore_file(trainer: Any, path: str | Path) -> dict:
    """Load the checkpoint at ``path`` into ``trainer`` (:func:`load`, :func:`restore`) and
    return its payload (log, wall time); one-line ``ScenarioError`` (:func:`mismatch`) for
    a file whose trainer state does not fit."""
    payload = load(path)
    try:
        restore(trainer, payload["trainer"])
    except Exception as err:  # any content that is not this trainer's
        raise mismatch(path, err) from None
    return payload


def wall_seconds(value: Any) -> float:
    """The ``wall_s`` entry of a checkpoint: a finite number of seconds >= 0."""
    if not _number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"wall_s is {short(repr(value), 60)}, not a number of seconds >= 0")
    return float(value)
