"""Fuzz the fields of every shipped scenario: each generated file either runs a tiny budget
(exit 0, a finished run) or is refused with one line on stderr, exit 2 and nothing written
under the runs folder — never a traceback, never a hang.

Each example takes a shipped scenario shrunk to a tiny budget (one seed, short GTB and
Cleanup episodes, batch 1, one evaluation episode), mutates one to three of its fields (drops
one, gives a wrong type, a huge, negative, zero, NaN or infinite number, a small plausible
one, a long string, a string with path separators, a deeply nested table, or adds an
unknown field), sometimes
corrupts the file's bytes, writes it as TOML (``tomli_w`` writes ``nan`` and ``inf``) and
runs ``econsim run FILE --iterations 1 --quiet`` in-process with a time limit.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import signal
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from econsim import cli, scenario

LIMIT_S = 30  # per example: a valid tiny run takes well under a second
EXAMPLES = int(os.environ.get("ECONSIM_FUZZ_EXAMPLES", "200"))  # more for a deeper local search
NAMES = scenario.names()


def tiny(name: str) -> dict[str, Any]:
    """Shipped scenario ``name`` as written, shrunk so a valid file runs in well under 1 s."""
    data = tomllib.loads(scenario.find(name).read_text())
    data["seeds"] = [0]
    env = data["env"]
    if env["name"] == "gtb":
        env.update(max_steps=10, period_length=5)
    elif env["name"] == "cleanup":
        env["max_steps"] = 5
    elif env["name"] == "sts2":
        env["max_steps"] = 20
    data["algorithm"]["batch"] = 1
    data["train"] = {"iterations": 1, "log_every": 1, "eval_every": 1, "eval_episodes": 1,
                     "checkpoint_every": 1}
    return data


def nested(depth: int) -> dict:
    """``{"a": {"a": ... {"a": 1}}}``, ``depth`` tables deep."""
    node: Any = 1
    for _ in range(depth):
        node = {"a": node}
    return node


VALUES = [
    # huge, negative, zero, tiny
    10**9, 2**63 - 1, -(2**63), 1e308, -1e308, 1e19, 0, 0.0, -1, -0.5, 1e-300,
    # plausible but unusual (small, so a valid file still runs in well under a second)
    1, 2, 3, 7, 16, 0.5, 0.999, 1.0, 2.0, 100.0, [1], [3, 3], [0, 1, 2],
    # not finite
    math.nan, math.inf, -math.inf,
    # wrong types
    "x", "", True, [], [1, "a"], [[]], {"a": 1}, "1e3",
    # long strings, path separators, control characters
    "x" * 5000, "../../etc/passwd", "/etc/passwd", "a/b", "..", "C:\\x\\map.txt",
    "/tmp/map.txt", "line\nbreak", "é🙂",
]
MUTATIONS = st.one_of(
    st.just(("drop", None)),
    st.just(("unknown", None)),
    st.sampled_from(VALUES).map(lambda v: ("set", v)),
    st.integers(1, 14).map(lambda d: ("set", nested(d))),
)
CORRUPTIONS = st.one_of(
    *[st.just(None)] * 8,  # mostly a well-formed file
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("byte"), st.floats(0, 1), st.sampled_from([b"\xff", b"\x00", b"[", b"="])),
)


def paths(data: dict, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path of ``data``: tables, their fields and list items."""
    for key, value in data.items():
        here = (*prefix, key)
        yield here
        if isinstance(value, dict):
            yield from paths(value, here)
        elif isinstance(value, list):
            yield from ((*here, i) for i in range(len(value)))


def mutate(data: dict, path: tuple, op: str, value: Any) -> None:
    """Apply one mutation in place at ``path``."""
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if op == "drop":
        del parent[last]
    elif op == "unknown":
        target = parent[last] if isinstance(parent[last], dict) else parent
        if isinstance(target, dict):
            target["zz_unknown"] = 1
    else:
        parent[last] = copy.deepcopy(value)  # never share (or nest) the list of values


def corrupt(raw: bytes, how: tuple | None) -> bytes:
    if how is None:
        return raw
    at = int(how[1] * len(raw))
    return raw[:at] if how[0] == "truncate" else raw[:at] + how[2] + raw[at:]


@st.composite
def scenario_files(draw) -> tuple[str, bytes, list]:
    """(shipped scenario, bytes of a mutated file, the mutations made)."""
    name = draw(st.sampled_from(NAMES))
    data = tiny(name)
    made = []
    for _ in range(draw(st.integers(1, 3))):
        all_paths = list(paths(data))
        if not all_paths:
            break
        path = draw(st.sampled_from(all_paths))
        op, value = draw(MUTATIONS)
        mutate(data, path, op, value)
        made.append((path, op, value if not isinstance(value, str) else value[:20]))
    how = draw(CORRUPTIONS)
    made.append(("bytes", how))
    return name, corrupt(tomli_w.dumps(data).encode(), how), made


class Hang(BaseException):
    """The per-example time limit passed (a BaseException, so no handler swallows it)."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def _raise(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_file(raw: bytes, tmp: Path) -> tuple[int, str, Path]:
    """``econsim run`` on a file in ``tmp`` holding ``raw``, with runs folder ``tmp/runs``:
    (exit status, stderr, runs folder)."""
    file, root = tmp / "fuzz.toml", tmp / "runs"
    file.write_bytes(raw)
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err), time_limit(LIMIT_S):
        code = cli.main(["--root", str(root), "run", str(file), "--iterations", "1", "--quiet"])
    return code, err.getvalue(), root


def statuses(root: Path) -> list[str]:
    return [json.loads(p.read_text()).get("status") for p in root.glob("*/run.json")]


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario_files())
def test_every_mutated_scenario_runs_or_is_refused_with_one_line(case):
    name, raw, made = case
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        code, err, root = run_file(raw, Path(tmp))
        where = f"{name} {made}: exit {code}, stderr {err!r}"
        event(f"exit {code}")
        if code == 0:
            assert statuses(root) == ["finished"], where
            return
        assert code == 2, where
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("econsim: error: "), where
        assert "Traceback" not in err, where
        if any(w in err for w in ("diverg", "non-finite")):  # a run that diverged is failed
            assert statuses(root) == ["failed"], where
        else:
            assert not root.exists() or not any(root.iterdir()), where


def test_every_tiny_base_scenario_is_valid_and_runs(tmp_path):
    """The bases themselves are valid (so mutations start from a good file) and run."""
    for name in NAMES:
        scenario.from_dict(tiny(name), name)
    code, err, root = run_file(tomli_w.dumps(tiny("gtb_metagrad")).encode(), tmp_path)
    assert code == 0 and statuses(root) == ["finished"], err
