"""The GTB step, observation and action mask compiled with numba: one loop over worlds and
agents per call instead of a few hundred numpy calls (issue 15).

The rules are those of ``game.py``'s module docstring, in its order of a step; this module is
how they run. Every arithmetic operation is the one the numpy kernel of 2026-12-03 performed,
in the same order and precision, so both give the same bits on every state that ``reset``
and ``step`` reach (``tests/test_gtb_kernel_pins.py`` pins them; the numpy kernel also turned
a hand-set -0.0 in an inventory into +0.0 by adding zeros, which this one does not). What
stays in ``game.py``: the installed tax rule at period ends and the utility
(numpy's ``power``), the ``info`` table and the state's bookkeeping.

Tables come from :class:`Tables` (built once per game); arrays are the :class:`State`'s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from econsim.core.seeding import _GOLDEN, _MIX1, _MIX2
from econsim.envs.gtb.market import INF

_MIX = (np.uint64(_GOLDEN), np.uint64(_MIX1), np.uint64(_MIX2))
_SCALE = 1.0 / 9007199254740992.0  # 2^-53
NOOP, UP, DOWN, LEFT, RIGHT, BUILD = range(6)  # the actions (game.py)
TRADE0 = 6  # first trading action


class Rules(NamedTuple):
    """A game's parameters that the step reads (``game.Params``)."""

    move_labor: float
    collect_labor: float
    build_labor: float
    order_labor: float
    build_payment: float
    regen_prob: float
    gather_bonus: bool
    houses_block: bool
    max_orders: int
    order_expiry: int


class Tables(NamedTuple):
    """A game's static lookup tables, as the compiled functions take them."""

    nbr: np.ndarray  # [H*W, 5] target of each move, -1 blocked
    src_type: np.ndarray  # [H*W] 0 wood, 1 stone, -1 not a source
    src_cells: np.ndarray  # [S] the source cells, in the order of their regrowth uniforms
    a_move: np.ndarray  # [A] move of each action (0: none)
    a_code: np.ndarray  # [A] order code of each action (-1: none)
    price: np.ndarray  # [codes + 1] market tables indexed by code + 1 (market.py)
    is_bid: np.ndarray
    item_in: np.ndarray
    item_out: np.ndarray
    need: np.ndarray
    escrow: np.ndarray  # [codes + 1, 3]
    match: np.ndarray  # [codes + 1, codes + 1]
    row: np.ndarray  # [H*W] each cell's row and column
    col: np.ndarray
    static: np.ndarray  # [H*W, 4, V*V] uint8 wood/stone source, water, outside windows
    cutoffs: np.ndarray  # [K] bracket edges
    side: int  # the window's side, 2 * view_radius + 1


@njit(cache=True, nogil=True)
def _uniforms(key: np.uint64, first: np.uint64, out: np.ndarray) -> None:
    """``out[j]``: the counter stream's uniform number ``first + j + 1`` of ``key``
    (``econsim.core.seeding.counter_uniforms``)."""
    golden, mix1, mix2 = _MIX
    for j in range(out.shape[0]):
        z = key + (first + np.uint64(j + 1)) * golden
        z = (z ^ (z >> np.uint64(30))) * mix1
        z = (z ^ (z >> np.uint64(27))) * mix2
        z ^= z >> np.uint64(31)
        out[j] = np.float64(z >> np.uint64(11)) * _SCALE


@njit(cache=True, nogil=True, inline="always")
def _can_build(house, b, c, tb: Tables) -> bool:
    """A house may stand on cell ``c`` of world ``b``: not a resource source, no house yet."""
    return tb.src_type[c] < 0 and house[b, c] < 0


@njit(cache=True, nogil=True)
def buildable(out, house, tb: Tables) -> None:
    """``out [B, H*W]``: where a house may stand (``_can_build``)."""
    for b in range(house.shape[0]):
        for c in range(house.shape[1]):
            out[b, c] = _can_build(house, b, c, tb)


@njit(cache=True, nogil=True)
def step(act, t, key, pos, res, house, inv, esc, labor, skill, gather_p, houses, o_code, o_seq,
         tb: Tables, ru: Rules):
    """One step of every world up to taxes (moves and gathering, building, orders, expiry,
    regrowth), updating the state's arrays in place; returns the new positions and the
    per-agent ``(built, build_income, gathered_wood, gathered_stone, trade_flow,
    trade_volume)`` of the step."""
    B, N = act.shape
    M = o_code.shape[2]
    S = tb.src_cells.shape[0]
    n_rand = S + 2 * N
    u = np.empty(n_rand)
    new_pos = np.empty_like(pos)
    built = np.zeros((B, N), np.bool_)
    build_income = np.empty((B, N))
    g_wood = np.empty((B, N))
    g_stone = np.empty((B, N))
    flow = np.zeros((B, N))
    volume = np.zeros((B, N))
    ok = np.empty(N, np.bool_)
    tgt = np.empty(N, np.int64)
    cand = np.empty(N, np.int64)
    codes = np.empty(N, np.int64)
    arrival = np.empty(N, np.int64)
    refund = np.empty(3)
    for b in range(B):
        _uniforms(key[b], np.uint64(t[b]) * np.uint64(n_rand), u)
        # moves and gathering
        for i in range(N):
            mv = tb.a_move[act[b, i]]
            tgt[i] = tb.nbr[pos[b, i], mv]
            k = mv > 0 and tgt[i] >= 0
            if k and ru.houses_block:
                owner = house[b, tgt[i]]
                k = owner < 0 or owner == i
            if k:
                for j in range(N):
                    if tgt[i] == pos[b, j]:
                        k = False
            ok[i] = k
            cand[i] = tgt[i] if k else -2 - i
        for i in range(N):
            if ok[i]:
                same = 0
                for j in range(N):
                    same += cand[i] == cand[j]
                ok[i] = same == 1
        for i in range(N):
            c = tgt[i] if ok[i] else pos[b, i]
            new_pos[b, i] = c
            here = res[b, c]
            got = ok[i] and here
            res[b, c] = here and not got
            amount = got * (1.0 + (u[S + i] < gather_p[b, i])) if ru.gather_bonus else got * 1.0
            kind = tb.src_type[c]
            inv[b, i, 1 + kind] += amount
            g_wood[b, i] = amount * (kind == 0)
            g_stone[b, i] = amount * (kind == 1)
            labor[b, i] += ok[i] * ru.move_labor + got * ru.collect_labor
        # building (on the cell reached)
        for i in range(N):
            c = new_pos[b, i]
            bd = (act[b, i] == BUILD and inv[b, i, 1] >= 1 and inv[b, i, 2] >= 1
                  and _can_build(house, b, c, tb))
            built[b, i] = bd
            inv[b, i, 1] -= bd
            inv[b, i, 2] -= bd
            build_income[b, i] = bd * (ru.build_payment * skill[b, i])
            inv[b, i, 0] += build_income[b, i]
            labor[b, i] += bd * ru.build_labor
            if bd:
                house[b, c] = i
            houses[b, i] += bd
        # orders: valid ones, then arrival in the order of the uniforms' ranks
        for i in range(N):
            c1 = tb.a_code[act[b, i]] + 1
            n_open = 0
            for m in range(M):
                n_open += o_code[b, i, m] >= 0
            valid = (c1 > 0 and n_open < ru.max_orders
                     and inv[b, i, tb.item_in[c1]] >= tb.need[c1])
            codes[i] = c1 - 1 if valid else -1
            labor[b, i] += valid * ru.order_labor
        for i in range(N):  # insertion sort: numpy's argsort of so few values
            j = i
            while j > 0 and u[S + N + arrival[j - 1]] > u[S + N + i]:
                arrival[j] = arrival[j - 1]
                j -= 1
            arrival[j] = i
        _submit(b, inv, esc, o_code, o_seq, codes, arrival, t[b], tb, flow, volume)
        # expiry (at the step count after this step)
        # placed at step seq // N with t + 1 - seq // N >= expiry, i.e. seq < first_kept
        first_kept = (t[b] + 2 - ru.order_expiry) * N
        for i in range(N):
            refund[:] = 0.0
            expired = False
            for m in range(M):
                code = o_code[b, i, m]
                if code >= 0 and o_seq[b, i, m] < first_kept:
                    for item in range(3):  # summed over the slots first, then added
                        refund[item] += tb.escrow[code + 1, item]
                    o_code[b, i, m] = -1
                    expired = True
            if expired:
                for item in range(3):
                    inv[b, i, item] += refund[item]
                    esc[b, i, item] -= refund[item]
        # regrowth of empty sources
        for j in range(S):
            if u[j] < ru.regen_prob:
                res[b, tb.src_cells[j]] = True
    return new_pos, built, build_income, g_wood, g_stone, flow, volume


@njit(cache=True, nogil=True)
def _submit(b, inv, esc, o_code, o_seq, codes, arrival, t, tb: Tables, flow, volume):
    """World ``b``'s new orders in arrival order (the auction's rules: ``market.py``)."""
    N, M = o_code.shape[1], o_code.shape[2]
    for k in range(N):
        a = arrival[k]
        c1 = codes[a] + 1
        if c1 == 0:
            continue
        best, j = INF, 0
        for o in range(N):
            if o == a:
                continue
            for m in range(M):
                key = tb.match[c1, o_code[b, o, m] + 1]
                if key < INF:
                    key += o_seq[b, o, m]
                    if key < best:  # the first of equal keys, as numpy's argmin
                        best, j = key, o * M + m
        matched = best < INF
        o, m = j // M, j % M
        q = tb.price[o_code[b, o, m] + 1] if matched else 0.0
        bid = tb.is_bid[c1]
        i_in, i_out = tb.item_in[c1], tb.item_out[c1]
        if matched:
            amt_in = q if bid else 1.0
            amt_out = 1.0 if bid else q
            inv[b, a, i_in] -= amt_in
            inv[b, a, i_out] += amt_out
            esc[b, o, i_out] -= amt_out
            inv[b, o, i_in] += amt_in
            o_code[b, o, m] = -1
            cash = -q if bid else q
            flow[b, a] += cash
            flow[b, o] -= cash
            volume[b, a] += 1.0
            volume[b, o] += 1.0
        else:
            amt_in = tb.price[c1] if bid else 1.0
            inv[b, a, i_in] -= amt_in
            esc[b, a, i_in] += amt_in
            s = 0
            for m2 in range(M):
                if o_code[b, a, m2] < 0:
                    s = m2
                    break
            o_code[b, a, s] = c1 - 1
            o_seq[b, a, s] = t * N + k


@njit(cache=True, nogil=True)
def observe(obs, t, pos, res, house, inv, esc, labor, skill, gather_p, houses, coin_last,
            tax_rates, o_code, tb: Tables, build_pay, pos_scale_r, pos_scale_c,
            period_length, max_steps, n_codes):
    """Every agent's observation into ``obs [B, N, obs_size]`` (``game.py``'s layout).

    The static channels (sources, water, outside) are copied from ``tb.static``; the dynamic
    ones are mostly zero, so they are zeroed and then the world's few resource units, agents
    and houses that fall inside each window are set."""
    B, N, _ = obs.shape
    M = o_code.shape[2]
    V = tb.side
    cells = V * V
    R = V // 2
    K = tb.cutoffs.shape[0]
    S = tb.src_cells.shape[0]
    n_cells = tb.row.shape[0]
    counts = np.zeros((N, n_codes), np.int64)
    total = np.zeros(n_codes, np.int64)
    static = tb.static.reshape(n_cells, 4 * cells)
    spatial = 9 * cells
    # the world's items: (row, col, channel offset, owner); channel offset -1: a house
    items_r = np.empty(S + N + n_cells, np.int64)
    items_c = np.empty(S + N + n_cells, np.int64)
    items_ch = np.empty(S + N + n_cells, np.int64)
    items_h = np.empty(S + N + n_cells, np.int64)
    for b in range(B):
        n_items = 0
        for j in range(S):
            c = tb.src_cells[j]
            if res[b, c]:
                items_r[n_items], items_c[n_items] = tb.row[c], tb.col[c]
                items_ch[n_items] = tb.src_type[c] * cells  # wood 0, stone 1
                n_items += 1
        for i in range(N):
            items_r[n_items], items_c[n_items] = tb.row[pos[b, i]], tb.col[pos[b, i]]
            items_ch[n_items] = 6 * cells
            n_items += 1
        for c in range(n_cells):
            if house[b, c] >= 0:
                items_r[n_items], items_c[n_items] = tb.row[c], tb.col[c]
                items_ch[n_items] = -1
                items_h[n_items] = house[b, c]
                n_items += 1
        counts[:] = 0
        total[:] = 0
        for i in range(N):
            for m in range(M):
                if o_code[b, i, m] >= 0:
                    counts[i, o_code[b, i, m]] += 1
                    total[o_code[b, i, m]] += 1
        for i in range(N):
            o = obs[b, i]
            p = pos[b, i]
            row, col = tb.row[p], tb.col[p]
            o[:2 * cells] = 0.0
            for k in range(4 * cells):
                o[2 * cells + k] = static[p, k]
            o[6 * cells:spatial] = 0.0
            for j in range(n_items):
                dy = items_r[j] - row + R
                dx = items_c[j] - col + R
                if 0 <= dy < V and 0 <= dx < V:
                    k = dy * V + dx
                    ch = items_ch[j]
                    if ch >= 0:
                        o[ch + k] = 1.0
                    elif items_h[j] == i:
                        o[7 * cells + k] = 1.0
                    else:
                        o[8 * cells + k] = 1.0
            v = spatial
            for item in range(3):
                o[v + item] = inv[b, i, item]
                o[v + 3 + item] = esc[b, i, item]
            o[v + 6] = labor[b, i]
            o[v + 7] = skill[b, i] * build_pay
            o[v + 8] = gather_p[b, i]
            o[v + 9] = row * pos_scale_r
            o[v + 10] = col * pos_scale_c
            o[v + 11] = houses[b, i]
            v += 12
            for c in range(n_codes):
                o[v + c] = counts[i, c]
                o[v + n_codes + c] = total[c] - counts[i, c]
            v += 2 * n_codes
            for k in range(K):
                o[v + k] = tax_rates[b, k]
            v += K
            income = inv[b, i, 0] + esc[b, i, 0] - coin_last[b, i]
            bracket = 0
            for k in range(1, K):
                bracket += income >= tb.cutoffs[k]
            o[v] = tax_rates[b, bracket]
            o[v + 1] = income
            o[v + 2] = (t[b] % period_length) / period_length
            o[v + 3] = t[b] / max_steps


@njit(cache=True, nogil=True)
def action_mask(mask, pos, house, inv, o_code, tb: Tables, ru: Rules):
    """Legal actions into ``mask [B, N, A]`` (``GTB.action_mask``'s rules)."""
    B, N, A = mask.shape
    M = o_code.shape[2]
    for b in range(B):
        for i in range(N):
            mk = mask[b, i]
            mk[:] = False
            mk[NOOP] = True
            for mv in range(1, 5):
                c = tb.nbr[pos[b, i], mv]
                ok = c >= 0
                if ok and ru.houses_block:
                    owner = house[b, c]
                    ok = owner < 0 or owner == i
                if ok:
                    for j in range(N):
                        if c == pos[b, j]:
                            ok = False
                mk[UP + mv - 1] = ok
            c = pos[b, i]
            mk[BUILD] = inv[b, i, 1] >= 1 and inv[b, i, 2] >= 1 and _can_build(house, b, c, tb)
            n_open = 0
            for m in range(M):
                n_open += o_code[b, i, m] >= 0
            if n_open < ru.max_orders:
                for a in range(TRADE0, A):
                    c1 = a - TRADE0 + 1
                    mk[a] = inv[b, i, tb.item_in[c1]] >= tb.need[c1]
