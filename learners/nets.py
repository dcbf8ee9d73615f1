"""Stacked networks: many independent parameter sets ("members") evaluated in one call.

A population of P members (replicas x agents, no parameter sharing) keeps each weight as one
tensor with a leading member dimension, ``W: [P, in, out]``, and evaluates all members with
one batched matmul. Parameters live in plain dicts so a learner's update can be written as
a pure function of them (``learners.functional``). Parameter sharing is P = 1 broadcast over
agents. Initialisation is Glorot-uniform weights and zero biases, drawn per member from that
member's own generator, so a member's initial weights depend only on its own seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Params = dict[str, torch.Tensor]


def glorot(fan_in: int, fan_out: int, gens: Sequence[torch.Generator]) -> torch.Tensor:
    """Glorot-uniform ``[P, fan_in, fan_out]``, one generator per member."""
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    return torch.stack([
        (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound for g in gens
    ])


def init_mlp(sizes: Sequence[int], gens: Sequence[torch.Generator],
             out_bias: bool = True) -> Params:
    """Parameters of a stacked MLP with layer ``sizes`` (input, hidden..., output)."""
    params: Params = {}
    last = len(sizes) - 2
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        params[f"w{k}"] = glorot(i, o, gens)
        if k < last or out_bias:
            params[f"b{k}"] = torch.zeros(len(gens), 1, o)
    for p in params.values():
        p.requires_grad_(True)
    return params


def mlp(params: Params, x: torch.Tensor) -> torch.Tensor:
    """Evaluate a stacked MLP: ``x [P, B, in] -> [P, B, out]``; ReLU between layers."""
    n = sum(1 for k in params if k.startswith("w"))
    for k in range(n):
        w, b = params[f"w{k}"], params.get(f"b{k}")
        x = torch.baddbmm(b, x, w) if b is not None else torch.bmm(x, w)
        if k < n - 1:
            x = torch.relu(x)
    return x


def init_conv(channels: int, filters: int, kernel: int,
              gens: Sequence[torch.Generator]) -> Params:
    """A stacked conv layer: weights ``[P, filters, channels, k, k]`` (Glorot-uniform on
    ``fan_in = channels k^2``, ``fan_out = filters k^2``), zero biases ``[P, filters]``."""
    fan_in, fan_out = channels * kernel * kernel, filters * kernel * kernel
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    w = torch.stack([(torch.rand(filters, channels, kernel, kernel, generator=g) * 2 - 1)
                     * bound for g in gens])
    return {"w": w.requires_grad_(True),
            "b": torch.zeros(len(gens), filters).requires_grad_(True)}


def conv(params: Params, images: torch.Tensor) -> torch.Tensor:
    """Stacked ReLU conv, stride 1, "same" padding: ``[P, B, C, H, W] -> [P, B, F, H, W]``.

    All members run as one grouped convolution (group ``p`` = member ``p``)."""
    P, B, C, H, W = images.shape
    w, b = params["w"], params["b"]
    F, k = w.shape[1], w.shape[-1]
    x = images.transpose(0, 1).reshape(B, P * C, H, W)
    y = torch.nn.functional.conv2d(x, w.reshape(P * F, C, k, k), b.reshape(P * F),
                                   padding=k // 2, groups=P)
    return torch.relu(y).reshape(B, P, F, H, W).transpose(0, 1)


def select(params: Params, members: torch.Tensor | list[int]) -> Params:
    """The parameters of a subset of members (a view for reading, not for training)."""
    return {k: v[members] for k, v in params.items()}


def detach(params: Params) -> Params:
    """A copy of ``params`` that is a new leaf requiring grad (e.g. a prime becoming main)."""
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def assign(dst: Params, src: Params) -> None:
    """Copy ``src`` into ``dst``'s tensors in place (optimisers keep pointing at them)."""
    with torch.no_grad():
        for k, v in src.items():
            dst[k].copy_(v)
