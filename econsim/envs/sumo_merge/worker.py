"""The SUMO side of ``sumo_merge``: one simulation (libsumo) in one process, driven over a pipe.

``econsim.envs.sumo_merge.pool`` starts it as ``python worker.py FD PARENT_PID DEATHSIG`` (a
script, run by its path: it imports numpy and libsumo, never econsim). ``FD`` is its end of a
socket pair carrying pickled tuples (``multiprocessing.connection``); ``PARENT_PID`` is the
process that started it; ``DEATHSIG`` "1" asks for SIGTERM when the starting thread dies.

Lifetime. The worker serves one game's world until it is told to close, and it never outlives
its parent: it exits when the pipe reaches end-of-file (the parent closed it or died), when
its parent process changes (checked twice a second while idle), and on SIGTERM, which it asks
Linux to send when its parent dies (``PR_SET_PDEATHSIG``). SIGTERM only marks the worker to
stop at its next check, so no clean-up is cut short: every exit closes the simulation and
removes the worker's temporary folder (the network, the routes, the egos of the current
episode). Only a SIGKILL of the worker itself leaves its folder behind.

Protocol, one reply per request:

* ``("init", config)`` -> ``("ok", folder)``, the worker's temporary folder: ``config``
  holds the network and background routes (XML text), the SUMO options, the number of egos,
  the warm-up steps and the constants of the ego controls (the game's ``Pool`` config);
  ``preroll``: an episode's first step comes once every ego is on the road (``load``).
* ``("run", key, seed, lanes, delays, history, actions)`` -> ``("ok", snapshot)``: brings the
  simulation to episode ``key`` after the steps ``history`` ``[t, N]`` (reloading it with
  SUMO seed ``seed``, egos in ``lanes`` departing after ``delays`` steps, and replaying the
  history, unless it is there already), then plays ``actions`` ``[N]`` for one step (None:
  no step); the snapshot describes the simulation afterwards.
* ``("close",)`` -> the worker exits. A failed request replies ``("error", "one line")``.

A snapshot is a dict of numpy arrays: per ego ``status`` (0 waiting to depart, 1 driving,
2 arrived at x >= ``arrive_x`` and taken off the road, 3 collided and removed by SUMO),
``x`` (front bumper along the road, m), ``y`` (centre, from the road's right edge, m), ``v``
(m/s), each the last known value; per SUMO-controlled vehicle on the road ``bx``, ``by``,
``bv``, ``blen``, ``bwid`` (length and width, m) and ``bkind`` (0 sedan, 1 truck).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from multiprocessing.connection import Connection

import numpy as np

WAITING, DRIVING, ARRIVED, COLLIDED = 0, 1, 2, 3
SAFE_SPEED_MODE = 31  # SUMO's default: safe speed, acceleration limits, right of way
PREROLL_EXTRA = 25  # steps the pre-roll waits beyond the last scheduled departure
NOOP, ACCELERATE, DECELERATE, LEFT, RIGHT = range(5)


class Simulation:
    """One SUMO simulation of the double merge (libsumo), at one point of one episode."""

    def __init__(self, sumo, config: dict, folder: str) -> None:
        self.sumo, self.cfg = sumo, config
        self.n = config["n_agents"]
        self.ids = [f"ego{i}" for i in range(self.n)]
        self.index = {v: i for i, v in enumerate(self.ids)}
        net = os.path.join(folder, "merge.net.xml")
        routes = os.path.join(folder, "traffic.rou.xml")
        self.egos_file = os.path.join(folder, "egos.rou.xml")
        for path, text in ((net, config["net_xml"]), (routes, config["routes_xml"])):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        self.args = ["-n", net, "-r", f"{routes},{self.egos_file}", *config["options"]]
        self.started = False
        self.prerolling = False
        self.key: tuple[int, int] | None = None
        self.kinds: dict[str, tuple[float, float, int]] = {}

    # ------------------------------------------------------------------ episodes
    def load(self, seed: int, lanes, delays) -> None:
        """Start episode: a fresh simulation, warmed up, the egos' departures scheduled, run
        until the egos without delay are on the road (``preroll``: until every ego is, or
        ``PREROLL_EXTRA`` steps after the last departure time)."""
        c, sumo = self.cfg, self.sumo
        warm = c["warmup_steps"]
        egos = sorted(range(self.n), key=lambda i: (int(delays[i]), i))  # by departure
        rows = [f'    <vehicle id="{self.ids[i]}" type="ego" route="road" '
                f'depart="{(warm + int(delays[i])) * c["step_length"]:.3f}" '
                f'departLane="{int(lanes[i])}" departPos="base" '
                f'departSpeed="{c["depart_speed"]}" insertionChecks="collision"/>'
                for i in egos]
        with open(self.egos_file, "w", encoding="utf-8") as f:
            f.write("<routes>\n" + "\n".join(rows) + "\n</routes>\n")
        args = [*self.args, "--seed", str(int(seed))]
        if self.started:
            sumo.load(args)
        else:
            sumo.start(["sumo", *args])
            self.started = True
        lw = c["lane_width"]
        self.status = np.zeros(self.n, np.int8)
        self.x = np.zeros(self.n)
        self.y = (np.asarray(lanes, np.float64) + 0.5) * lw
        self.v = np.full(self.n, float(c["depart_speed"]))
        self.target = self.y.copy()
        for _ in range(warm + 1):
            sumo.simulationStep()
            self._after_step()
        if c["preroll"]:  # the agents start once every ego is on the road: until then the
            # earlier egos keep their speed and lane (no-ops), SUMO braking them where traffic
            # ahead makes that unsafe; an ego that cannot enter within PREROLL_EXTRA steps
            # of its departure time enters later, waiting like one with start
            # "own_departure"
            self.prerolling = True
            for _ in range(int(max(delays)) + PREROLL_EXTRA):
                if not (self.status == WAITING).any():
                    break
                self.act(np.full(self.n, NOOP))
            self.prerolling = False
            for i in np.flatnonzero(self.status == DRIVING):
                sumo.vehicle.setSpeedMode(self.ids[i], 0)

    def act(self, actions) -> None:
        """One step: each driving ego's speed and lateral target from its action, then SUMO."""
        c, veh = self.cfg, self.sumo.vehicle
        dv = c["accel"] * c["step_length"]
        for i in np.flatnonzero(self.status == DRIVING):
            a = int(actions[i])
            v = self.v[i] + (dv if a == ACCELERATE else -dv if a == DECELERATE else 0.0)
            veh.setSpeed(self.ids[i], min(max(v, 0.0), c["max_speed"]))
            if a == LEFT:
                self.target[i] = min(self.target[i] + c["sublane"], c["y_max"])
            elif a == RIGHT:
                self.target[i] = max(self.target[i] - c["sublane"], c["y_min"])
            veh.changeSublane(self.ids[i], float(self.target[i] - self.y[i]))
        self.sumo.simulationStep()
        self._after_step()

    def _after_step(self) -> None:
        """Read what SUMO did in the step: departures, collisions, positions, arrivals."""
        sumo, veh, c = self.sumo, self.sumo.vehicle, self.cfg
        departed = [v for v in sumo.simulation.getDepartedIDList() if v in self.index]
        for v in departed:  # only the agent moves it: no SUMO speed or lane control (in the
            # pre-roll SUMO's safe speed until the agents take over)
            self.status[self.index[v]] = DRIVING
            veh.setSpeedMode(v, SAFE_SPEED_MODE if self.prerolling else 0)
            veh.setLaneChangeMode(v, 0)
        hit = set()
        for col in sumo.simulation.getCollisions():
            hit.update((col.collider, col.victim))
        on_road = set(veh.getIDList())
        for i, v in enumerate(self.ids):
            if self.status[i] != DRIVING:
                continue
            if v in hit:  # SUMO removed it (--collision.action remove)
                self.status[i] = COLLIDED
                continue
            if v not in on_road:  # drove off the end of the road within the step
                self.status[i] = ARRIVED
                continue
            x, y = veh.getPosition(v)
            self.x[i], self.y[i], self.v[i] = x, y + c["road_width"], veh.getSpeed(v)
            if v in departed:
                self.target[i] = self.y[i]
            if self.x[i] >= c["arrive_x"]:
                self.status[i] = ARRIVED
                veh.remove(v)

    def snapshot(self) -> dict:
        veh = self.sumo.vehicle
        others = [v for v in veh.getIDList() if v not in self.index]
        m = len(others)
        out = {"status": self.status.copy(), "x": self.x.copy(), "y": self.y.copy(),
               "v": self.v.copy()}
        bx, by, bv = np.empty(m), np.empty(m), np.empty(m)
        blen, bwid, bkind = np.empty(m), np.empty(m), np.empty(m, np.int8)
        for k, v in enumerate(others):
            kind = veh.getTypeID(v)
            if kind not in self.kinds:
                self.kinds[kind] = (self.sumo.vehicletype.getLength(kind),
                                    self.sumo.vehicletype.getWidth(kind),
                                    int(kind == "truck"))
            blen[k], bwid[k], bkind[k] = self.kinds[kind]
            bx[k], y = veh.getPosition(v)
            by[k] = y + self.cfg["road_width"]
            bv[k] = veh.getSpeed(v)
        out.update(bx=bx, by=by, bv=bv, blen=blen, bwid=bwid, bkind=bkind)
        return out

    def run(self, key, seed, lanes, delays, history, actions) -> dict:
        history = np.asarray(history).reshape(-1, self.n)
        want = (int(key), len(history))
        if self.key != want:
            self.key = None
            self.load(seed, lanes, delays)
            for a in history:
                self.act(a)
            self.key = want
        if actions is not None:
            self.key = None
            self.act(actions)
            self.key = (want[0], want[1] + 1)
        return self.snapshot()

    def close(self) -> None:
        if self.started:
            self.started = False
            self.sumo.close()


def _serve(conn: Connection, parent: int, folder: str, held: list, stop: list) -> None:
    while not stop:
        if not conn.poll(0.5):
            if os.getppid() != parent:
                return  # orphaned: the parent died without closing the pipe
            continue
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "close":
            return
        sim = held[0] if held else None
        try:
            if msg[0] == "init" and sim is None:
                import libsumo

                held.append(Simulation(libsumo, msg[1], folder))
                reply = ("ok", folder)
            elif msg[0] == "run" and sim is not None:
                reply = ("ok", sim.run(*msg[1:]))
            else:
                reply = ("error", f"unexpected request {msg[0]!r}")
        except Exception as err:  # noqa: BLE001 (reported to the parent, one line)
            text = " ".join(str(err).split()) or type(err).__name__
            reply = ("error", f"{type(err).__name__}: {text}"[:500])
            if sim is not None:
                sim.key = None  # the simulation is in an unknown state: reload next time
        try:
            conn.send(reply)
        except OSError:
            return


def main(argv: list[str]) -> int:
    fd, parent = int(argv[1]), int(argv[2])
    stop: list[int] = []
    # SIGTERM (the parent's death signal, or anyone's) only marks the worker to stop: it
    # leaves at its next check (within 0.5 s; a request in progress is finished first), so
    # the clean-up below always runs whole
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which closes us
    if argv[3] == "1" and sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):  # PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    conn = Connection(fd)
    if os.getppid() != parent:  # the parent died before the death signal was set
        return 0
    folder = tempfile.mkdtemp(prefix="econsim-sumo-")
    held: list[Simulation] = []
    try:
        _serve(conn, parent, folder, held, stop)
    finally:
        try:
            if held:
                held[0].close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
