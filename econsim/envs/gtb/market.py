"""Continuous double auction of the GTB economy (SPEC §6), batch-first numpy.

Every order is for one unit of one resource (wood or stone) at an integer price
``0..max_price``. An order is a *code* ``(resource * 2 + side) * (max_price + 1) + price``
with side 0 = bid (buy) and 1 = ask (sell); ``-1`` is an empty book slot.

The book of a world is ``o_code``/``o_seq`` ``[B, N, M]``: slot ``m`` of agent ``n`` holds one
open order (``M = max_orders`` per agent, over both resources and sides) and its sequence
number ``seq = t * N + rank`` (step it was placed, then its place in that step's random
arrival order), which gives time priority and the order's age.

Inventories are ``inv``/``esc`` ``[B, N, 3]`` with items 0 coin, 1 wood, 2 stone: ``inv`` is
available, ``esc`` held in escrow by open orders. A resting bid at price ``p`` holds ``p`` coin
in escrow, a resting ask one unit of its resource.

New orders arrive one at a time in the step's arrival order. An arriving bid at ``p`` trades
with the cheapest open ask at a price ``<= p`` of another agent (oldest first among equal
prices); an arriving ask at ``p`` with the highest open bid at ``>= p``. The trade is at the
price of the resting (earlier) order. If nothing matches, the order rests in the book and its
escrow is taken. Orders older than ``expiry`` steps are cancelled and their escrow returned.
Agents never trade with themselves.

This module holds the auction's lookup tables and the book's layout; the arrivals and the
expiry run in the compiled step (``kernel.py``: ``_submit`` and the expiry loop).
"""

from __future__ import annotations

import numpy as np

INF = np.int64(1) << np.int64(60)
COIN, WOOD, STONE = 0, 1, 2
RESOURCES = ("wood", "stone")
SIDES = ("bid", "ask")


class Market:
    """Lookup tables of the auction (the rules that use them: ``kernel.py``)."""

    def __init__(self, n_agents: int, max_orders: int, max_price: int, expiry: int,
                 max_steps: int) -> None:
        self.n_agents, self.max_orders = n_agents, max_orders
        self.n_prices = p1 = max_price + 1
        self.n_codes = 4 * p1
        code = np.arange(self.n_codes)
        kind, price = np.divmod(code, p1)
        res, side = np.divmod(kind, 2)
        bid = side == 0
        # tables indexed by ``code + 1`` (entry 0 = no order / empty slot)
        pad = np.concatenate
        self.price = pad([[0], price]).astype(np.float64)
        self.is_bid = pad([[False], bid])
        self.item_in = pad([[COIN], np.where(bid, COIN, 1 + res)])  # what the order gives
        self.item_out = pad([[COIN], np.where(bid, 1 + res, COIN)])  # what it receives
        esc = np.zeros((self.n_codes + 1, 3))
        esc[code + 1, self.item_in[1:]] = np.where(bid, price, 1)
        self.escrow = esc  # escrow a resting order holds, [code + 1, item]
        self.need = esc.max(1)  # amount of ``item_in`` an order needs (price or 1 unit)
        # priority key of a book order for an arriving order: lower is better, INF = no match
        # (live orders' sequence numbers differ by less than ``big``: price comes first)
        big = np.int64(max(max_steps, expiry) + 2) * n_agents
        match = np.full((self.n_codes + 1, self.n_codes + 1), INF, np.int64)
        for c in range(self.n_codes):
            same = (res == res[c]) & (side != side[c])
            ok = same & ((price <= price[c]) if bid[c] else (price >= price[c]))
            score = price if bid[c] else max_price - price
            match[c + 1, 1:] = np.where(ok, score * big, INF)
        self.match = match

    def empty_book(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (batch, self.n_agents, self.max_orders)
        return np.full(shape, -1, np.int64), np.zeros(shape, np.int64)

    def counts(self, o_code: np.ndarray) -> np.ndarray:
        """Open orders per agent and code, ``[B, N, n_codes]`` (resource, side, price)."""
        b, n, m = o_code.shape
        flat = o_code.reshape(b * n, m)
        idx = (np.arange(b * n)[:, None] * self.n_codes + flat)[flat >= 0]
        return np.bincount(idx, minlength=b * n * self.n_codes).reshape(b, n, self.n_codes)
