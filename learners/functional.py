"""Learners' updates as pure, differentiable functions of parameters and rewards.

LIO (Diss eqs. 5.3-5.4, 5.7-5.10) and MetaGrad (eqs. 6.3-6.6) differentiate an outer
objective through a recipient's one-step policy update. Here that update is
``new_params = sgd_step(loss, params, lr, ...)``: the inner gradient is taken with
``torch.func.grad`` while the rewards (a function of incentive parameters) keep their
autograd graph, so ``d outer / d eta`` flows through the recipients' update.

Shapes: member-major, ``[P, T, B]`` (members x time x episodes) unless stated.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import grad

from learners.nets import Params, bmm


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The logistic function as ``(1 + tanh(x / 2)) / 2``.

    The same function as ``torch.sigmoid``, but torch's vectorised sigmoid rounds an element
    differently depending on where it falls in the tensor (SIMD body or tail), so a replica's
    incentives would depend on how many replicas run beside it; tanh does not."""
    return 0.5 * (1.0 + torch.tanh(0.5 * x))


def discount_matrix(T: int, gamma: float) -> torch.Tensor:
    """``D[t, l] = gamma^(l - t)`` for ``l >= t`` else 0, so ``G = D @ r`` is reward-to-go."""
    idx = torch.arange(T)
    power = (idx[None, :] - idx[:, None]).clamp(min=0).float()
    return torch.where(idx[None, :] >= idx[:, None], gamma ** power, torch.zeros(()))


def reward_to_go(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = sum_{l>=t} gamma^(l-t) r_l`` along dim -2 of ``rewards [..., T, B]`` (eq. 5.4).

    Rewards after the end of an episode must already be zero (masked).
    """
    T, B = rewards.shape[-2:]
    r = rewards.reshape(-1, T, B)
    D = discount_matrix(T, gamma).to(rewards.dtype).expand(r.shape[0], T, T)
    return bmm(D, r).reshape(rewards.shape)


def next_step(x: torch.Tensor) -> torch.Tensor:
    """``x`` one step later along dim 0 (``x[t + 1]`` at ``t``), zero after the last step:
    next observations / values, and with ``x = mask`` whether the episode goes on."""
    return torch.cat([x[1:], torch.zeros_like(x[:1])])


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> torch.Tensor:
    """Generalised advantage estimates along dim 0 of ``rewards``/``values`` ``[T, ...]``.

    ``A_t = sum_l (gamma lam)^l delta_{t+l}``, ``delta_t = r_t + gamma V(s_{t+1}) - V(s_t)``
    (Schulman et al. 2016; the designer advantages of Diss eq. 6.5 and of PPO). ``mask [T, B]``
    (broadcast over trailing dims) marks live steps; the last live step of an episode is
    terminal (no bootstrap) and steps after it get 0.
    """
    T = rewards.shape[0]
    extra = (None,) * (rewards.dim() - mask.dim())
    m = mask[(..., *extra)]
    next_alive = next_step(m)
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(T - 1, -1, -1):
        v_next = values[t + 1] if t + 1 < T else torch.zeros_like(values[t])
        delta = rewards[t] + gamma * v_next * next_alive[t] - values[t]
        running = (delta + gamma * lam * next_alive[t] * running) * m[t]
        adv[t] = running
    return adv


def behaviour_probs(logits: torch.Tensor, eps: float | torch.Tensor,
                    valid: torch.Tensor | None = None) -> torch.Tensor:
    """Exploration lower bound ``(1 - eps) * softmax(logits) + eps / |A|`` (Diss §5.3.2).

    ``valid`` (bool, broadcastable to logits) marks the actions an agent has when agents
    with fewer actions share a stacked network, or the legal actions of a state (a game's
    action mask); invalid actions get probability 0 and ``eps`` is spread over the valid ones.
    """
    if valid is not None:
        logits = logits.masked_fill(~valid, float("-inf"))
        n = valid.sum(-1, keepdim=True).to(logits.dtype)
        uniform = valid.to(logits.dtype) / n
    else:
        uniform = 1.0 / logits.shape[-1]
    return (1 - eps) * torch.softmax(logits, -1) + eps * uniform


def policy_loss(probs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor,
                mask: torch.Tensor, entropy: float) -> torch.Tensor:
    """Policy-gradient loss ``-sum_t [log pi(a_t) w_t + beta H(pi_t)]``, mean over episodes.

    ``weights`` is the reward-to-go ``G_t`` (PG, eq. 5.4) or the TD error (actor-critic,
    eq. B.9); it carries the graph to incentive parameters when they shaped the reward.
    Summed over members, so each member's gradient is its own loss's gradient.
    """
    logp_all = torch.log(probs.clamp_min(1e-12))
    logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    ent = -(probs * logp_all).sum(-1)
    per_step = (logp * weights + entropy * ent) * mask
    return -per_step.sum(-2).mean(-1).sum()


def sgd_step(loss_fn: Callable[..., torch.Tensor], params: Params, lr: float,
             *args) -> Params:
    """One differentiable plain-SGD step ``theta - lr * grad loss_fn(theta, *args)`` (eq. 5.3)."""
    g = grad(loss_fn)(params, *args)
    return {k: params[k] - lr * g[k] for k in params}


def td_errors(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
              done: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """TD(0) errors ``delta_t = r_t + gamma V(s_{t+1}) (1 - done_t) - V(s_t)`` (eqs. B.9-B.10).

    All tensors ``[P, T, B]`` (``done``/``mask`` broadcastable); steps with ``mask = 0``
    (after an episode's end) give 0. Nothing is detached here: the actor-critic weights use
    ``values``/``next_values`` as constants (detach them) while ``rewards`` may carry the
    graph to incentive parameters (LIO, MetaGrad); the critic's loss is ``delta^2`` with
    ``next_values`` from the target network.
    """
    return (rewards + gamma * next_values * (1 - done) - values) * mask
