"""Stacked networks: many independent parameter sets ("members") evaluated in one call.

A population of P members (replicas x agents, no parameter sharing) keeps each weight as one
tensor with a leading member dimension, ``W: [P, in, out]``, and evaluates all members with
one batched matmul. Parameters live in plain dicts so a learner's update can be written as
a pure function of them (``learners.functional``). Parameter sharing is P = 1 broadcast over
agents. Initialisation is Glorot-uniform weights and zero biases, drawn per member from that
member's own generator, so a member's initial weights depend only on its own seed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

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


_ALIGN = 16  # floats: 64 bytes, the CPU allocator's alignment and one AVX-512 register


def _up(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _aligned(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """``x [P, r, c]`` zero-padded to ``[P, rows, cols]`` in a fresh, aligned, contiguous
    tensor (no copy when it already is one)."""
    r, c = x.shape[-2:]
    if (r, c) != (rows, cols):
        return torch.nn.functional.pad(x, (0, cols - c, 0, rows - r))
    if not x.is_contiguous() or _offset(x):
        return x.clone(memory_format=torch.contiguous_format)
    return x


def _offset(x: torch.Tensor) -> bool:
    """Whether ``x`` starts off the 64-byte grid (a view into a larger tensor)."""
    try:
        return x.data_ptr() % (x.element_size() * _ALIGN) != 0
    except RuntimeError:  # a torch.func wrapper has no storage of its own
        return x.storage_offset() % _ALIGN != 0


def bmm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a [P, n, k] @ b [P, k, m] (+ bias [P, 1, m])`` for stacked members, each member's
    result independent of the others.

    torch's batched matmul (MKL) rounds a member's product differently depending on where its
    block lies in memory (its alignment) and on ``P`` (one member takes a matrix-vector
    path). Zero-padding every dimension to a multiple of 16 floats gives every member block,
    in the product and in its gradients, the same alignment and the same kernel, so a seed
    trains the same alone or beside other seeds (``tests/test_seed_independence.py``).
    ``a`` may be ``learners.sparse.SparseRows`` (mostly-zero rows): the same numbers, the
    zeros skipped."""
    if not isinstance(a, torch.Tensor):
        return a.matmul(b, bias)
    P, n, k = a.shape
    m = b.shape[-1]
    a2, b2 = _aligned(a, _up(n), _up(k)), _aligned(b, _up(k), _up(m))
    if bias is None:
        out = torch.bmm(a2, b2)
    else:
        out = torch.baddbmm(_aligned(bias.expand(P, 1, m), 1, _up(m)), a2, b2)
    return out if (out.shape[1], out.shape[2]) == (n, m) else out[:, :n, :m]


def mlp(params: Params, x: torch.Tensor) -> torch.Tensor:
    """Evaluate a stacked MLP: ``x [P, B, in] -> [P, B, out]``; ReLU between layers."""
    n = sum(1 for k in params if k.startswith("w"))
    for k in range(n):
        x = bmm(x, params[f"w{k}"], params.get(f"b{k}"))
        if k < n - 1:
            x = torch.relu(x)
    return x


def init_conv(channels: int, filters: int, kernel: int | tuple[int, int],
              gens: Sequence[torch.Generator]) -> Params:
    """A stacked conv layer: weights ``[P, filters, channels, kh, kw]`` (``kernel``: ``k``
    for ``k x k`` or ``(kh, kw)``; Glorot-uniform on ``fan_in = channels kh kw``, ``fan_out =
    filters kh kw``), zero biases ``[P, filters]``."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    fan_in, fan_out = channels * kh * kw, filters * kh * kw
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    w = torch.stack([(torch.rand(filters, channels, kh, kw, generator=g) * 2 - 1)
                     * bound for g in gens])
    return {"w": w.requires_grad_(True),
            "b": torch.zeros(len(gens), filters).requires_grad_(True)}


def _twinned(params: Params, x: torch.Tensor) -> tuple[Params, torch.Tensor]:
    """A lone member (``P = 1``) beside a zero twin: a grouped convolution with one group
    takes another code path than with several, which rounds differently."""
    return ({k: torch.cat([v, torch.zeros_like(v)]) for k, v in params.items()},
            torch.cat([x, torch.zeros_like(x)]))


def conv(params: Params, images: torch.Tensor) -> torch.Tensor:
    """Stacked ReLU conv, stride 1, "same" padding: ``[P, B, C, H, W] -> [P, B, F, H, W]``.

    All members run as one grouped convolution (group ``p`` = member ``p``)."""
    if images.shape[0] == 1:
        return conv(*_twinned(params, images))[:1]
    P, B, C, H, W = images.shape
    w, b = params["w"], params["b"]
    F, k = w.shape[1], w.shape[-1]
    x = images.transpose(0, 1).reshape(B, P * C, H, W)
    y = torch.nn.functional.conv2d(x, w.reshape(P * F, C, k, k), b.reshape(P * F),
                                   padding=k // 2, groups=P)
    return torch.relu(y).reshape(B, P, F, H, W).transpose(0, 1)


def sub(params: Params, prefix: str) -> Params:
    """The parameters named ``<prefix>.<name>``, as ``{name: tensor}`` (one network of
    several kept in one dict)."""
    dot = prefix + "."
    return {k[len(dot):]: v for k, v in params.items() if k.startswith(dot)}


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


# ------------------------------------------------------ pluggable network builders
class Net(Protocol):
    """A stacked network: ``init(in_dim, out_dim, gens)`` and ``apply(params, x)``.

    ``x`` is ``[P, B, in_dim]`` (flat observations; an image network reshapes them itself)
    and the output ``[P, B, out_dim]``; one member per generator in ``gens``.
    """

    def init(self, in_dim: int, out_dim: int, gens: Sequence[torch.Generator]) -> Params: ...

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor: ...


#: hidden layer sizes -> network (``MLPNet`` itself is one; ``ConvNet`` with its image bound)
NetBuilder = Callable[[Sequence[int]], Net]


@dataclass(frozen=True)
class MLPNet:
    """Stacked ReLU MLP with the given hidden sizes (``learners.nets.init_mlp``/``mlp``)."""

    hidden: Sequence[int]
    out_bias: bool = True

    def init(self, in_dim: int, out_dim: int, gens: Sequence[torch.Generator]) -> Params:
        return init_mlp([in_dim, *self.hidden, out_dim], gens, self.out_bias)

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        return mlp(params, x)


@dataclass(frozen=True)
class ConvNet:
    """The Cleanup network of Diss §B.4.2: conv(``filters``, 3x3, stride 1, same, ReLU) on the
    image, flattened, then a ReLU MLP with the given hidden sizes (64, 64).

    The flat input starts with the channel-last image ``image = (H, W, C)``; anything after
    it (e.g. observed incentives, the others' actions) joins the flattened conv output
    before the MLP, or after its first ``join_after`` hidden layers (parameters ``pre.*``:
    LIO's incentive function, §B.4.2, joins the others' actions after the first).
    ``out_bias``: the output layer has a bias.
    """

    hidden: Sequence[int]
    image: tuple[int, int, int]
    filters: int = 6
    kernel: int = 3
    join_after: int = 0
    out_bias: bool = True

    def init(self, in_dim: int, out_dim: int, gens: Sequence[torch.Generator]) -> Params:
        H, W, C = self.image
        rest, k = in_dim - H * W * C, self.join_after
        if rest < 0:
            raise ValueError(f"ConvNet: input of {in_dim} values is smaller than the image "
                             f"{self.image}")
        if not 0 <= k <= len(self.hidden):
            raise ValueError(f"ConvNet: join_after {k} is not allowed (allowed: 0 to "
                             f"{len(self.hidden)}, the hidden layers {list(self.hidden)})")
        feats = self.filters * H * W
        pre = init_mlp([feats, *self.hidden[:k]], gens) if k else {}
        width = self.hidden[k - 1] if k else feats
        head = init_mlp([width + rest, *self.hidden[k:], out_dim], gens, self.out_bias)
        body = init_conv(C, self.filters, self.kernel, gens)
        return {**{f"conv.{n}": v for n, v in body.items()},
                **{f"pre.{n}": v for n, v in pre.items()}, **head}

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        H, W, C = self.image
        P, B, _ = x.shape
        img = x[..., :H * W * C].reshape(P, B, H, W, C).permute(0, 1, 4, 2, 3)
        feats = conv(sub(params, "conv"), img).reshape(P, B, -1)
        if self.join_after:
            feats = torch.relu(mlp(sub(params, "pre"), feats))
        head = {k: v for k, v in params.items() if not k.startswith(("conv.", "pre."))}
        return mlp(head, torch.cat([feats, x[..., H * W * C:]], -1))


def soft_update(target: Params, source: Params, tau: float) -> Params:
    """Target-network update ``phi~ <- tau phi + (1 - tau) phi~`` (Diss §B.4.2); new tensors."""
    return {k: (tau * source[k].detach() + (1 - tau) * target[k]).detach() for k in target}


@dataclass(frozen=True)
class Stem:
    """A convolution over an image held in a slice of a flat input (Diss A.8.3's Checkers
    networks): the values ``start .. start + H W C`` of the input are a channel-last image
    ``image = (H, W, C)``; ``filters`` kernels of ``kernel = (kh, kw)``, stride 1, no padding
    ("valid"), ReLU, flattened; then, with ``dense``, a ReLU layer of that width."""

    start: int
    image: tuple[int, int, int]
    filters: int
    kernel: tuple[int, int]
    dense: int = 0

    @property
    def size(self) -> int:
        """Input values the image takes."""
        H, W, C = self.image
        return H * W * C

    @property
    def flat(self) -> int:
        """Values of the flattened convolution."""
        H, W, _ = self.image
        return self.filters * (H - self.kernel[0] + 1) * (W - self.kernel[1] + 1)

    @property
    def features(self) -> int:
        """Output values."""
        return self.dense or self.flat

    def __post_init__(self) -> None:
        H, W, _ = self.image
        if not (0 < self.kernel[0] <= H and 0 < self.kernel[1] <= W):
            raise ValueError(f"Stem: kernel {self.kernel} does not fit the image {self.image}")

    def init(self, gens: Sequence[torch.Generator]) -> Params:
        """Fresh parameters, one member per generator: ``conv.w [P, filters, C, kh, kw]``
        (Glorot), ``conv.b`` (zeros), with ``dense`` also ``dense.w0``/``dense.b0``."""
        params = {f"conv.{k}": v for k, v in
                  init_conv(self.image[2], self.filters, self.kernel, gens).items()}
        if self.dense:
            params.update({f"dense.{k}": v for k, v in
                           init_mlp([self.flat, self.dense], gens).items()})
        return params

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """``x [P, B, >= start + size]`` -> features ``[P, B, features]``.

        The convolution runs as one matrix product: its kernel laid out as the sparse
        ``[H W C, H' W' F]`` matrix of the same linear map (faster than a grouped conv2d on
        images this small, and aligned as ``bmm`` needs for seed independence)."""
        w, b = params["conv.w"], params["conv.b"]
        P = w.shape[0]
        at, filt = _conv_matrix(self.image, self.kernel, self.filters)
        flat = torch.cat([w.reshape(P, -1), w.new_zeros(P, 1)], 1)  # the zero: no tap
        out = torch.relu(bmm(x[..., self.start:self.start + self.size],
                             flat[:, at], b[:, None, filt]))
        return torch.relu(mlp(sub(params, "dense"), out)) if self.dense else out


@functools.cache
def _conv_matrix(image: tuple[int, int, int], kernel: tuple[int, int], filters: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """For a valid, stride-1 convolution of a channel-last ``image`` with ``filters`` kernels
    ``[filters, C, kh, kw]``: ``at [H W C, H' W' F]``, the flat kernel index each (input,
    output) pair multiplies by (``filters C kh kw``: none, a zero), and ``filt [H' W' F]``,
    each output's filter (outputs ordered row, column, filter)."""
    H, W, C = image
    kh, kw = kernel
    Ho, Wo = H - kh + 1, W - kw + 1
    i, j, c, oi, oj, f = torch.meshgrid(*(torch.arange(n) for n in (H, W, C, Ho, Wo, filters)),
                                        indexing="ij")
    di, dj = i - oi, j - oj
    tap = (di >= 0) & (di < kh) & (dj >= 0) & (dj < kw)
    at = ((f * C + c) * kh + di.clamp(0, kh - 1)) * kw + dj.clamp(0, kw - 1)
    at = torch.where(tap, at, filters * C * kh * kw)
    return at.reshape(H * W * C, Ho * Wo * filters), torch.arange(filters).repeat(Ho * Wo)


@dataclass(frozen=True)
class AugmentedMLP:
    """A stacked MLP that function augmentation can grow (Diss §3.3.4-3.3.5, A.8).

    The *base* is an MLP ``base_in -> hidden... -> out`` (ReLU between layers): the stage-1
    network. A *branch* ``branch_in -> branch_hidden...`` (ReLU layers; none: the raw input)
    joins hidden layer ``join`` (an index into ``hidden``; default the last, the special
    layer h*): ``h_join = relu(W h_prev + b + W^{1:2} h_branch)``, with ``W^{1:2}`` the
    parameter ``"join"`` (no bias). Parameters of the base are ``w{k}``/``b{k}``, of the
    branch ``branch.w{k}``/``branch.b{k}`` and ``join``, so stage-1 parameters restore into a
    stage-2 network by name (``augment``), and the stage-2 network with ``join = 0`` computes
    exactly the stage-1 function.

    ``stems``: convolutions over images held in slices of the base input (:class:`Stem`,
    parameters ``stem{i}.*``, part of the base): the first layer then reads the stems'
    features, in order, followed by the input's other values in their order (so a one-hot
    action that ends the input still ends it).
    """

    base_in: int
    hidden: tuple[int, ...]
    out: int
    branch_in: int = 0
    branch_hidden: tuple[int, ...] = ()
    join: int = -1
    stems: tuple[Stem, ...] = ()

    def __post_init__(self) -> None:
        if self.branch_in and not self.hidden:
            raise ValueError(f"a network with a branch of {self.branch_in} inputs joins it into "
                             "a hidden layer but has none (allowed: at least one hidden layer, "
                             "e.g. hidden = [64])")
        spans = sorted((st.start, st.start + st.size) for st in self.stems)
        ends = [0] + [end for _, end in spans]
        if any(start < end for (start, _), end in zip(spans, ends, strict=False)) or (
                spans and spans[-1][1] > self.base_in):
            raise ValueError(f"AugmentedMLP: stems {spans} overlap or run past the input of "
                             f"{self.base_in} values")

    @property
    def first_in(self) -> int:
        """Width of the first layer's input: the stems' features and the other values."""
        return self.base_in + sum(st.features - st.size for st in self.stems)

    def front(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """``x [P, B, n]`` (the base input, or its first ``n`` values) -> the first layer's
        input: each stem's features, then the values no stem reads."""
        if not self.stems:
            return x
        feats = [st.apply(sub(params, f"stem{i}"), x) for i, st in enumerate(self.stems)]
        keep, at = [], 0
        for st in sorted(self.stems, key=lambda st: st.start):
            keep.append(x[..., at:st.start])
            at = st.start + st.size
        keep.append(x[..., at:])
        return torch.cat(feats + keep, -1)

    @property
    def join_layer(self) -> int:
        return self.join % len(self.hidden)

    @staticmethod
    def grown(key: str) -> bool:
        """Whether parameter ``key`` belongs to the branch that augmentation adds (the branch's
        layers and the joining weights) rather than to the base."""
        return key == "join" or key.startswith("branch.")

    def init_base(self, gens: Sequence[torch.Generator]) -> Params:
        """Fresh base (stage-1) parameters, one member per generator."""
        stems = {f"stem{i}.{k}": v for i, st in enumerate(self.stems)
                 for k, v in st.init(gens).items()}
        return {**stems, **init_mlp([self.first_in, *self.hidden, self.out], gens)}

    def init_branch(self, gens: Sequence[torch.Generator],
                    join_std: float | None = None) -> Params:
        """Fresh branch parameters (Glorot weights, zero biases); the joining weights
        ``W^{1:2}`` are Glorot too, or normal with standard deviation ``join_std`` when given
        (small: the augmented network starts close to the restored one)."""
        sizes = [self.branch_in, *self.branch_hidden]
        params = {f"branch.{k}": v for k, v in init_mlp(sizes, gens).items()} \
            if self.branch_hidden else {}
        shape = (sizes[-1], self.hidden[self.join_layer])
        join = glorot(*shape, gens) if join_std is None else torch.stack(
            [torch.randn(*shape, generator=g) * join_std for g in gens])
        params["join"] = join.requires_grad_(True)
        return params

    def init(self, gens: Sequence[torch.Generator]) -> Params:
        """A whole stage-2 network from scratch (base and branch)."""
        return {**self.init_base(gens), **(self.init_branch(gens) if self.branch_in else {})}

    def augment(self, base: Params, gens: Sequence[torch.Generator],
                join_std: float | None = None) -> Params:
        """Stage-1 ``base`` parameters restored (copied) beside a fresh branch (joining
        weights as ``init_branch``)."""
        return {**{k: v.detach().clone().requires_grad_(True) for k, v in base.items()},
                **self.init_branch(gens, join_std)}

    def apply(self, params: Params, x: torch.Tensor,
              branch: torch.Tensor | None = None) -> torch.Tensor:
        """``x [P, ..., base_in]`` (and ``branch [P, ..., branch_in]`` when the parameters
        have a branch) -> ``[P, ..., out]``."""
        lead = x.shape[:-1]
        h = self.front(params, x.reshape(x.shape[0], -1, x.shape[-1]))
        add = None
        if "join" in params:
            if branch is None:
                raise ValueError("AugmentedMLP: a network with a branch needs its input")
            b = branch.reshape(branch.shape[0], -1, branch.shape[-1])
            for k in range(len(self.branch_hidden)):
                b = torch.relu(bmm(b, params[f"branch.w{k}"], params[f"branch.b{k}"]))
            add = bmm(b, params["join"])
        n = len(self.hidden) + 1
        for k in range(n):
            pre = bmm(h, params[f"w{k}"], params[f"b{k}"])
            if add is not None and k == self.join_layer:
                pre = pre + add
            h = torch.relu(pre) if k < n - 1 else pre
        return h.reshape(*lead, self.out)

    def apply_actions(self, params: Params, x: torch.Tensor, n_actions: int,
                      branch: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs for every action at once, when the base input ends with a one-hot action:
        ``x [P, G, base_in - n_actions]`` (the rest of the base input) and ``branch [P, G,
        M, branch_in]`` -> ``[P, G, M, n_actions, out]`` (``M = 1`` without a branch).

        The layers below the join are computed once per (row, action), not once per branch
        row: the same function as ``apply`` on the expanded inputs, at a fraction of the cost
        (CM3's counterfactual baselines, eq. 3.6)."""
        A, (P, G) = n_actions, x.shape[:2]
        w0 = params["w0"]
        pre = (bmm(self.front(params, x), w0[:, :-A], params["b0"])[:, :, None, None, :]
               + w0[:, None, None, -A:])
        add = None
        if "join" in params:
            if branch is None:
                raise ValueError("AugmentedMLP: a network with a branch needs its input")
            M = branch.shape[2]
            b = branch.reshape(P, -1, branch.shape[-1])
            for k in range(len(self.branch_hidden)):
                b = torch.relu(bmm(b, params[f"branch.w{k}"], params[f"branch.b{k}"]))
            add = bmm(b, params["join"]).reshape(P, G, M, 1, -1)
        n = len(self.hidden) + 1
        h = pre
        for k in range(n):
            if k > 0:
                rows = h.shape[:4]
                pre = bmm(h.reshape(P, -1, h.shape[-1]), params[f"w{k}"],
                          params[f"b{k}"]).reshape(*rows, -1)
            if add is not None and k == self.join_layer:
                pre = pre + add
            h = torch.relu(pre) if k < n - 1 else pre
        return h


@dataclass(frozen=True)
class QMixer:
    """QMIX's monotonic mixing network with state-conditioned hypernetworks (Rashid et al.
    2018, as described in Diss A.8), stacked: one member per replica.

    ``Q_tot = elu(q^T W_1 + b_1)^T w_2 + b_2`` for the agents' chosen Q-values ``q [N]``, with
    every weight a function of the mixer's ``state``:

    * ``W_1 = |hyper_w1(s)|`` ``[N, embed]`` and ``w_2 = |hyper_w2(s)|`` ``[embed]`` (absolute
      values: ``Q_tot`` is non-decreasing in each ``q_n``, since ELU is increasing);
    * ``b_1 = hyper_b1(s)`` ``[embed]`` (one linear layer, any sign);
    * ``b_2 = V(s)``, a 2-layer hypernetwork ``state -> embed -> 1`` with ReLU.

    The weight hypernetworks are one linear layer (the original description) unless
    ``hyper_hidden`` gives them ReLU hidden layers. Parameters are named ``{head}.w{k}`` /
    ``{head}.b{k}`` for the heads ``w1``, ``b1``, ``w2``, ``v``. Nothing here knows which game or
    which per-agent network produced ``q``, or what ``state`` holds (CM3's baseline gives it the
    global state and all goals; HSD's high level its own state).
    """

    n_agents: int
    state_size: int
    embed: int = 64
    hyper_hidden: tuple[int, ...] = ()

    HEADS = ("w1", "b1", "w2", "v")

    def init(self, gens: Sequence[torch.Generator]) -> Params:
        """Fresh parameters (Glorot weights, zero biases), one member per generator."""
        D, E, N, hid = self.state_size, self.embed, self.n_agents, list(self.hyper_hidden)
        sizes = {"w1": [D, *hid, N * E], "b1": [D, E], "w2": [D, *hid, E], "v": [D, E, 1]}
        return {f"{head}.{k}": v for head in self.HEADS
                for k, v in init_mlp(sizes[head], gens).items()}

    @staticmethod
    def _head(params: Params, head: str, x: torch.Tensor) -> torch.Tensor:
        return mlp(sub(params, head), x)

    def apply(self, params: Params, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``q [P, ..., N]``, ``state [P, ..., state_size]`` -> ``Q_tot [P, ...]``."""
        lead, P, N, E = q.shape[:-1], q.shape[0], self.n_agents, self.embed
        s = state.reshape(P, -1, state.shape[-1])
        qs = q.reshape(P, -1, N)
        w1 = self._head(params, "w1", s).abs().reshape(*qs.shape, E)  # [P, B, N, E]
        hidden = torch.nn.functional.elu((qs[..., None] * w1).sum(-2)
                                         + self._head(params, "b1", s))  # [P, B, E]
        w2 = self._head(params, "w2", s).abs()  # [P, B, E]
        q_tot = (hidden * w2).sum(-1) + self._head(params, "v", s)[..., 0]
        return q_tot.reshape(lead)


@dataclass(frozen=True)
class BiLSTM:
    """A stacked bidirectional LSTM over short sequences, mean-pooled over time, then a linear
    layer (HSD's skill decoder, Diss §4.3.2: 128 units per direction; one member per replica).

    ``x [P, B, T, in_size]`` -> logits ``[P, B, out]``. Each direction is the standard LSTM
    cell (Hochreiter and Schmidhuber 1997): gates ``[i, f, g, o] = x_t W + h_{t-1} U + b``,
    ``c_t = sigma(f) c_{t-1} + sigma(i) tanh(g)``, ``h_t = sigma(o) tanh(c_t)``, from zero
    ``h`` and ``c``; the forward direction reads t = 0..T-1, the backward one T-1..0. The
    outputs ``[h^fwd_t, h^bwd_t]`` (2 x hidden) are averaged over t and mapped to ``out``
    logits. Parameters: ``{fwd,bwd}.w`` ``[P, in, 4H]``, ``{fwd,bwd}.u`` ``[P, H, 4H]`` (Glorot),
    ``{fwd,bwd}.b`` ``[P, 1, 4H]`` (zero), and the head ``w0``/``b0``.
    """

    in_size: int
    hidden: int
    out: int

    DIRECTIONS = ("fwd", "bwd")

    def init(self, gens: Sequence[torch.Generator]) -> Params:
        H = self.hidden
        params: Params = {}
        for d in self.DIRECTIONS:
            params[f"{d}.w"] = glorot(self.in_size, 4 * H, gens)
            params[f"{d}.u"] = glorot(H, 4 * H, gens)
            params[f"{d}.b"] = torch.zeros(len(gens), 1, 4 * H)
        params.update(init_mlp([2 * H, self.out], gens))
        for p in params.values():
            p.requires_grad_(True)
        return params

    def _direction(self, params: Params, d: str, x: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[P, B, T, H]`` of direction ``d`` (in time order)."""
        P, B, T, _ = x.shape
        H = self.hidden
        pre = bmm(x.reshape(P, B * T, -1), params[f"{d}.w"], params[f"{d}.b"])
        pre = pre.reshape(P, B, T, 4 * H)
        h = torch.zeros(P, B, H, dtype=x.dtype)
        c = torch.zeros(P, B, H, dtype=x.dtype)
        out: list[torch.Tensor] = [h] * T
        for t in (range(T) if d == "fwd" else range(T - 1, -1, -1)):
            gates = pre[:, :, t] + bmm(h, params[f"{d}.u"])
            i, f, g, o = gates.split(H, -1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            out[t] = h
        return torch.stack(out, 2)

    def features(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """The mean-pooled bidirectional outputs ``[P, B, 2 hidden]``."""
        both = torch.cat([self._direction(params, d, x) for d in self.DIRECTIONS], -1)
        return both.mean(2)

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[P, B, out]`` for sequences ``x [P, B, T, in_size]``."""
        return mlp({k: params[k] for k in ("w0", "b0")}, self.features(params, x))
