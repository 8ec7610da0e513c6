"""The paper's update rule (Section 5), exactly:

    v <- momentum * v - weight_decay * lr * w - lr * dL/dw
    w <- w + v

`torch.optim.SGD` keeps the learning rate outside the velocity (v <- m v + g; w <- w - lr v), so
after a learning-rate drop its old velocity is suddenly worth ten times less; here the velocity
already carries the old rate and decays away at the momentum's pace. The two agree only while the
learning rate is constant.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch.optim import Optimizer


def _paper_update(params: list[torch.Tensor], grads: list[torch.Tensor], velocities: list[torch.Tensor],
                  lr: torch.Tensor, momentum: float, decay: float) -> None:
    """The rule above with the learning rate as a 0-d tensor: compiled once (`fused=True`), one pass over
    the parameters reading p, g, v and writing v, p, and no recompilation when the rate changes."""
    torch._foreach_mul_(velocities, momentum)
    if decay != 0:
        torch._foreach_add_(velocities, torch._foreach_mul(params, -decay * lr))
    torch._foreach_add_(velocities, torch._foreach_mul(grads, -lr))
    torch._foreach_add_(params, velocities)


_compiled_update = None


def _fused_update():
    global _compiled_update
    if _compiled_update is None:
        _compiled_update = torch.compile(_paper_update, fullgraph=True, dynamic=False)
    return _compiled_update


def _by_device(params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """The parameters split by device, in order (multi-tensor kernels take one device at a time)."""
    groups: dict[torch.device, list[torch.Tensor]] = {}
    for p in params:
        groups.setdefault(p.device, []).append(p)
    return list(groups.values())


class PaperSGD(Optimizer):
    """SGD with momentum and weight decay folded into the velocity, as in the paper.

    Param groups may set their own `lr` and `weight_decay` (the cuda-convnet preset gives biases
    twice the rate and no decay). The velocity starts at zero. A group whose rate is 0 is frozen: it is
    not updated at all (its velocity kept, no weight decay), as the original code skipped the update
    of a layer whose base rate was 0.

    `fused=True` compiles the update (torch.compile: one fused kernel per group on a GPU, where the
    multi-tensor path makes four passes). The same rule, tested against hand-computed steps and the
    multi-tensor path; `alexnet train` uses it on CUDA whenever it compiles the model (SpeedSettings).
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9,
                 weight_decay: float = 5e-4, fused: bool = False) -> None:
        if not 0 <= lr < math.inf:  # written so that NaN fails too
            raise ValueError(f"learning rate must be >= 0 and finite, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not 0 <= weight_decay < math.inf:
            raise ValueError(f"weight decay must be >= 0 and finite, got {weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.fused = fused
        self._lr_tensors: dict[tuple[int, torch.device], torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            if lr == 0:  # frozen: no update at all, velocity and decay included (cuda-convnet's Weights::update)
                continue
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if "velocity" not in self.state[p]:
                    self.state[p]["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            for on_device in _by_device(params):  # one device, except under --model-parallel
                self._update(group, on_device, lr, momentum, decay)
        return loss

    def _update(self, group: dict, params: list[torch.Tensor], lr: float, momentum: float, decay: float) -> None:
        velocities = [self.state[p]["velocity"] for p in params]
        if self.fused:
            _fused_update()(params, [p.grad for p in params], velocities, self._lr_tensor(group, params[0]),
                            momentum, decay)
            return
        # Multi-tensor (foreach) kernels: a few launches for all parameters instead of four each.
        torch._foreach_mul_(velocities, momentum)
        if decay != 0:
            torch._foreach_add_(velocities, params, alpha=-decay * lr)
        torch._foreach_add_(velocities, [p.grad for p in params], alpha=-lr)
        torch._foreach_add_(params, velocities)

    def _lr_tensor(self, group: dict, like: torch.Tensor) -> torch.Tensor:
        """The group's rate as a 0-d tensor on the parameters' device, kept and refilled (not a new tensor
        and not a new compilation each time the schedule changes the rate); not part of the state dict."""
        key = (id(group), like.device)
        held = self._lr_tensors.get(key)
        if held is None:
            held = self._lr_tensors[key] = torch.zeros((), dtype=like.dtype, device=like.device)
        return held.fill_(group["lr"])
