"""One-line error messages for bad input (scenario files, env parameters, CLI values)."""

from __future__ import annotations

import typing

from pydantic import BaseModel, ValidationError


class ScenarioError(ValueError):
    """A scenario (file or dict) is invalid; ``str(err)`` is one line naming what is wrong."""


def _submodel(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (None if it cannot be found)."""
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a union tag or list index: stay on the current model
        ann = field.annotation
        candidates = [ann, *typing.get_args(ann)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)),
                     ann)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def short(text: str, limit: int = 120) -> str:
    """``text`` as one printable line of at most ``limit`` characters (escapes control
    characters such as newlines; elides the middle of a long text)."""
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    return f"{text[:half]}...{text[-half:]}"


def one_line(err: ValidationError, model: type[BaseModel] | None = None, prefix: str = "") -> str:
    """Render the first error of ``err`` as ``field: value is not allowed: reason``."""
    e = err.errors()[0]
    loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    name = short(".".join(str(p) for p in (*((prefix,) if prefix else ()), *loc)))
    where = f"{name}: " if name else ""
    if e["type"] == "extra_forbidden":
        owner = _submodel(model, loc[:-1]) if model is not None else None
        allowed = f" (allowed: {', '.join(owner.model_fields) or 'none'})" if owner else ""
        return f"{where}unknown field{allowed}"
    msg = short(e["msg"].removeprefix("Value error, "), 400)
    if e["type"] == "missing":
        return f"{where}required field is missing"
    if "input" in e and (loc or not isinstance(e["input"], dict)):  # not a model's whole table
        return f"{where}{short(repr(e['input']))} is not allowed: {msg}"
    return f"{where}{msg}"


class TrainingDiverged(ScenarioError):
    """Training produced a non-finite loss, metric or parameter (NaN or inf); ``str(err)`` is
    one line naming the iteration and the quantity, e.g. ``training diverged at iteration 37:
    policy_loss is nan (lower the learning rates)``."""


class StoreWarning(UserWarning):
    """A folder in the runs folder that is not a usable run (malformed or renamed run.json,
    missing or unreadable tables) and was skipped; the message is one line naming it."""
