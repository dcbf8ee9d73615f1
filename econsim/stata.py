"""Stata ``.dta`` files with variable labels, and a zip of every table of a result.

:func:`dta_bytes` writes a tidy table as a Stata 118 file (Stata 14 and newer; pandas reads it
back with ``pd.read_stata``) whose variable labels come from the one data dictionary
(``econsim.dictionary``): ``meaning [unit]``, cut to Stata's 80 characters. Stata's rules are
applied openly rather than by pandas' silent renaming:

* a column name that is not a Stata name (letters, digits and ``_``, not starting with a digit,
  at most 32 characters) is changed to one, and its label starts with the original name;
* infinite values (e.g. ``nash`` = -inf when an agent holds no coin) become missing (``.``),
  which the label says; text columns become strings (missing: empty), booleans 0/1.

:func:`bundle` zips every table as CSV and ``.dta``, the data dictionary and the scenario
TOML, for the app's *Everything (zip)* download and ``econsim export --format dta``.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping

import numpy as np
import pandas as pd

from econsim import dictionary

__all__ = ["stata_names", "dta_bytes", "bundle"]

LABEL_CHARS = 80
NAME_CHARS = 32


def stata_names(columns: list[str]) -> dict[str, str]:
    """Column -> a valid, unique Stata variable name (unchanged where it already is one)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for col in map(str, columns):
        name = re.sub(r"[^A-Za-z0-9_]", "_", col)
        if not name or not (name[0].isalpha() or name[0] == "_"):
            name = "v_" + name
        name = name[:NAME_CHARS]
        base, k = name, 1
        while name.lower() in used:
            suffix = f"_{k}"
            name = base[:NAME_CHARS - len(suffix)] + suffix
            k += 1
        used.add(name.lower())
        out[col] = name
    return out


def _label(original: str, name: str, unit: str, meaning: str, had_inf: bool) -> str:
    """``[original: ]meaning [unit][ (inf as missing)]`` in at most 80 characters: the
    meaning is what gets cut (ending in ``...``), never the unit or the notes."""
    head = f"{original}: " if name != original else ""
    tail = (f" [{unit}]" if unit else "") + (" (inf as missing)" if had_inf else "")
    text = meaning or ("" if head else original)
    room = LABEL_CHARS - len(head) - len(tail)
    if len(text) > room:
        text = text[:max(0, room - 3)].rstrip() + "..."
    return (head + text + tail)[:LABEL_CHARS]


def dta_bytes(df: pd.DataFrame, table: str, title: str | None = None) -> bytes:
    """``df`` as a Stata 118 file with variable labels from the data dictionary of
    ``table`` (``econsim.dictionary.TABLES``: e.g. ``episodes``, ``periods``)."""
    names = stata_names(list(df.columns))
    data, labels = {}, {}
    for col in df.columns:
        s = df[col]
        had_inf = False
        if pd.api.types.is_bool_dtype(s):
            s = s.astype(np.int8)
        elif pd.api.types.is_numeric_dtype(s):
            s = s.astype(np.float64) if not pd.api.types.is_integer_dtype(s) else s
            if pd.api.types.is_float_dtype(s):
                inf = np.isinf(s.to_numpy())
                had_inf = bool(inf.any())
                s = s.mask(inf)
            elif s.dtype.kind == "u" or (len(s) and (s.max() > 2**31 - 1 or s.min() < -2**31)):
                s = s.astype(np.float64)
            else:
                s = s.astype(np.int32)
        else:
            s = s.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                      else str(v)).astype(object)
        name = names[str(col)]
        data[name] = s.to_numpy()
        unit, meaning = dictionary.describe(table, str(col))
        labels[name] = _label(str(col), name, unit, meaning, had_inf)
    frame = pd.DataFrame(data, index=range(len(df)))
    buf = io.BytesIO()
    frame.to_stata(buf, write_index=False, version=118, variable_labels=labels,
                   data_label=(title or f"econsim {table}")[:LABEL_CHARS])
    return buf.getvalue()


def bundle(tables: Mapping[str, pd.DataFrame], stem: str, *,
           kinds: Mapping[str, str] | None = None,
           scenario_toml: str | Mapping[str, str] | None = None,
           readme: str | None = None) -> bytes:
    """A zip of ``<stem>-<table>.csv`` and ``.dta`` for every non-empty table, the data
    dictionary (``<stem>-dictionary.csv``), the scenario (``<stem>-scenario.toml``; several
    runs' scenarios as a mapping run id -> TOML: ``<stem>-<run_id>-scenario.toml``) and an
    optional ``README.txt``. ``kinds`` maps a table's name to its dictionary table when they
    differ (as ``econsim.dictionary.tables_dictionary``)."""
    kinds = dict(kinds or {})
    kept = {name: df for name, df in tables.items() if not df.empty}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, df in kept.items():
            z.writestr(f"{stem}-{name}.csv", df.to_csv(index=False))
            z.writestr(f"{stem}-{name}.dta", dta_bytes(df, kinds.get(name, name),
                                                        f"econsim {stem} {name}"))
        z.writestr(f"{stem}-dictionary.csv",
                   dictionary.tables_dictionary(kept, kinds).to_csv(index=False))
        if isinstance(scenario_toml, str):
            z.writestr(f"{stem}-scenario.toml", scenario_toml)
        elif scenario_toml is not None:
            for key, text in scenario_toml.items():
                z.writestr(f"{stem}-{key}-scenario.toml", text)
        if readme is not None:
            z.writestr("README.txt", readme)
    return buf.getvalue()
