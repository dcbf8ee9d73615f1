"""The worlds of a ``sumo_merge`` game: one SUMO simulation per world, each in a worker process.

libsumo runs one simulation per process, so a batch of B worlds uses B worker processes
(``worker.py``, started with the running Python); world ``b`` of every state is simulated by
worker ``b``. The game sends each busy worker its request first and then collects the
replies, so the B simulations step in parallel. Requests carry everything a world needs (the
episode's key, SUMO seed, lanes, departure delays and the actions so far), so a worker that
holds another episode (a second state of the same game, a restarted worker) reloads and
replays the episode: the state, not the process, is the truth.

No process is left behind. A worker exits when its pipe closes, when its parent changes and
on SIGTERM; on Linux the kernel sends it SIGTERM when the thread that started it dies
(``PR_SET_PDEATHSIG``, which the worker asks for first thing; only for workers started from
the main thread, since the end of another thread would stop them too early). ``Pool.close`` asks
every worker to exit, waits briefly and kills what is left; a pool is also closed when it is
garbage collected and at interpreter exit (``weakref.finalize``). The workers keep their files
in their own temporary folders and remove them when they exit; the parent writes no files.

``net_xml()`` builds the road once per process with SUMO's ``netconvert`` from the
``eclipse-sumo`` wheel (found through ``sumo.SUMO_HOME``; nothing is downloaded and no
``SUMO_HOME`` needs to be set).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
START_TIMEOUT = 120.0  # seconds for a worker to import libsumo and answer
STEP_TIMEOUT = 600.0  # seconds for one request (a reload with warm-up and a replay)


class SumoError(RuntimeError):
    """A SUMO worker failed; ``str(err)`` is one line."""


@functools.cache
def net_xml(length: float, lanes: int, lane_width: float, speed: float) -> str:
    """The SUMO network (``.net.xml`` text) of one straight edge ``road`` from x = 0 to
    ``length``, ``lanes`` lanes of ``lane_width`` m, speed limit ``speed`` m/s, built by the
    wheel's ``netconvert`` in a temporary folder that is removed afterwards."""
    import sumo

    exe = os.path.join(sumo.SUMO_HOME, "bin", "netconvert")
    with tempfile.TemporaryDirectory(prefix="econsim-net-") as d:
        nodes, edges, out = (os.path.join(d, f) for f in ("n.nod.xml", "e.edg.xml", "n.net.xml"))
        with open(nodes, "w", encoding="utf-8") as f:
            f.write(f'<nodes>\n    <node id="start" x="0" y="0"/>\n'
                    f'    <node id="end" x="{length:g}" y="0"/>\n</nodes>\n')
        with open(edges, "w", encoding="utf-8") as f:
            f.write(f'<edges>\n    <edge id="road" from="start" to="end" numLanes="{lanes}" '
                    f'speed="{speed:g}" width="{lane_width:g}"/>\n</edges>\n')
        done = subprocess.run(
            [exe, "--node-files", nodes, "--edge-files", edges, "--output-file", out,
             "--no-turnarounds", "true", "--no-internal-links", "true",
             "--xml-validation", "never", "--no-warnings", "true"],
            capture_output=True, text=True, env={**os.environ, "SUMO_HOME": sumo.SUMO_HOME},
            timeout=120)
        if done.returncode != 0 or not os.path.exists(out):
            err = " ".join((done.stderr or done.stdout).split())[-300:]
            raise SumoError(f"sumo_merge: netconvert failed: {err}")
        with open(out, encoding="utf-8") as f:
            return f.read()


class Worker:
    """One worker process and its end of the pipe."""

    def __init__(self, config: dict) -> None:
        mine, theirs = Pipe(duplex=True)
        fd = theirs.fileno()
        # the worker's stderr (SUMO's errors), an unnamed file closed with the worker
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        # the death signal follows the thread that starts the worker: only the main thread's
        main = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, str(fd), str(os.getpid()), "1" if main else "0"],
            pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.log)
        theirs.close()
        self.conn: Connection = mine
        self.folder = ""  # the worker's temporary folder, once it has answered
        self.conn.send(("init", config))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, msg: tuple) -> None:
        self.conn.send(msg)

    def receive(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise SumoError(f"sumo_merge: SUMO worker {self.pid} did not answer within "
                            f"{timeout:g} s")
        kind, value = self.conn.recv()
        if kind != "ok":
            raise SumoError(f"sumo_merge: SUMO worker {self.pid}: {value}")
        return value

    def failure(self) -> str:
        """One line about a worker that stopped: its exit code and last words."""
        code = self.proc.poll()
        try:
            self.log.seek(0)
            tail = " ".join(self.log.read().decode(errors="replace").split())[-300:]
        except (OSError, ValueError):
            tail = ""
        return f"exit code {code}" + (f": {tail}" if tail else "")

    def close(self, wait_s: float = 2.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("close",))
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.conn.close()
        self.log.close()


def _close_all(workers: list[Worker]) -> None:
    while workers:
        workers.pop().close()


class Pool:
    """Worker processes ``0..size-1``, one per world, started on demand."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.workers: list[Worker] = []
        self._finalizer = weakref.finalize(self, _close_all, self.workers)

    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [w.pid for w in self.workers]

    def folders(self) -> list[str]:
        """Temporary folders of the running workers (each removes its own when it exits)."""
        return [w.folder for w in self.workers]

    def ensure(self, size: int) -> None:
        """At least ``size`` workers, started side by side."""
        if not self._finalizer.alive:
            raise SumoError("sumo_merge: the game is closed")
        new = [Worker(self.config) for _ in range(size - len(self.workers))]
        self.workers.extend(new)
        for w in new:
            w.folder = self._receive(w, START_TIMEOUT)

    def _receive(self, w: Worker, timeout: float) -> Any:
        try:
            return w.receive(timeout)
        except (EOFError, OSError):
            raise SumoError(f"sumo_merge: SUMO worker {w.pid} stopped ({w.failure()})") from None

    def _restart(self, b: int) -> Worker:
        self.workers[b].close(0.1)
        w = self.workers[b] = Worker(self.config)
        w.folder = self._receive(w, START_TIMEOUT)
        return w

    def exchange(self, requests: dict[int, tuple]) -> dict[int, Any]:
        """Send ``requests`` (world -> message) to their workers, then collect the replies.

        A worker that died is restarted once and asked again (requests describe their
        episode fully); a second failure, an error reply or a worker that does not answer
        within ``STEP_TIMEOUT`` raises ``SumoError`` (after every other reply is read)."""
        self.ensure(max(requests, default=-1) + 1)
        dead: list[int] = []
        pending: dict[Connection, int] = {}
        for b, msg in requests.items():
            try:
                self.workers[b].send(msg)
                pending[self.workers[b].conn] = b
            except (OSError, ValueError):
                dead.append(b)
        replies: dict[int, Any] = {}
        errors: list[str] = []
        deadline = time.monotonic() + STEP_TIMEOUT
        while pending:
            ready = wait(list(pending), max(0.0, deadline - time.monotonic()))
            if not ready:  # hung: stop them (restarted when next asked)
                for b in pending.values():
                    self.workers[b].proc.kill()
                errors.append(f"sumo_merge: SUMO worker(s) did not answer within "
                              f"{STEP_TIMEOUT:g} s")
                break
            for conn in ready:
                b = pending.pop(conn)
                try:
                    replies[b] = self.workers[b].receive(0)
                except (EOFError, OSError):
                    dead.append(b)
                except SumoError as err:
                    errors.append(str(err))
        for b in dead:  # restart and ask once more
            w = self._restart(b)
            w.send(requests[b])
            replies[b] = self._receive(w, STEP_TIMEOUT)
        if errors:
            raise SumoError(errors[0])
        return replies

    def close(self) -> None:
        """Stop every worker (also done when the pool is garbage collected)."""
        self._finalizer()
