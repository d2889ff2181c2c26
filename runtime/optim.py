"""Optimizers: SGD (momentum, dampening, weight decay, Nesterov) and Adam, PyTorch's update rules.

Updates work on the parameters' arrays directly: an optimizer step is not part of any graph, and doing
it in the backend namespace keeps it one vectorised expression per parameter. The parameter's version
counter is bumped, as any in-place change must, so a graph that saved the old value refuses to run.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator

from .autograd import bump_version
from .backend import array_ns
from .nn import _zero_grad
from .tensor import Tensor


class Optimizer:
    """Holds parameter groups (each a dict with 'params' and its hyperparameters) and per-parameter
    state."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: dict[int, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict[str, Any]) -> None:
        g = dict(group)
        ps = g["params"]
        g["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in g["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for k, v in self.defaults.items():
            g.setdefault(k, v)
        self.param_groups.append(g)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget gradients: `.grad = None` (default), or zero-filled with set_to_none=False."""
        for g in self.param_groups:
            for p in g["params"]:
                _zero_grad(p, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        ids = {}
        groups = []
        for g in self.param_groups:
            gd = {k: v for k, v in g.items() if k != "params"}
            gd["params"] = []
            for p in g["params"]:
                ids.setdefault(id(p), len(ids))
                gd["params"].append(ids[id(p)])
            groups.append(gd)
        state = {ids[k]: {n: (v.copy() if hasattr(v, "copy") else v) for n, v in s.items()}
                 for k, s in self.state.items() if k in ids}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        params = [p for g in self.param_groups for p in g["params"]]
        for g, saved in zip(self.param_groups, state_dict["param_groups"], strict=True):
            g.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {id(params[i]): dict(s) for i, s in state_dict["state"].items()}

    def step(self, closure: Any = None) -> Any:
        raise NotImplementedError

    def _gradients(self) -> Iterator[tuple[dict, Tensor, Any, Any]]:
        """(group, parameter, gradient, values) for each parameter that has a gradient: the preamble
        every step shares. The gradient is negated under `maximize` and has `weight_decay * p` added
        (L2 in the gradient, as PyTorch's SGD, Adam, RMSprop and Adagrad define it)."""
        for group in self.param_groups:
            wd, maximize = group.get("weight_decay", 0.0), group.get("maximize", False)
            for p in group["params"]:
                g = _grad_array(p)
                if g is None:
                    continue
                x = p._array
                if maximize:
                    g = -g
                if wd:
                    g = g + wd * x
                yield group, p, g, x

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def _grad_array(p: Tensor) -> Any:
    g = p._grad
    return None if g is None else g._array


def _set(p: Tensor, new: Any) -> None:
    """Write the updated values into the parameter's memory (views of it see them) and bump its version."""
    a = p._array
    if hasattr(type(a), "__setitem__") and getattr(getattr(a, "flags", None), "writeable", True):
        a[...] = new
    else:
        p._array = new.astype(a.dtype)
    bump_version(p)


class SGD(Optimizer):
    """p -= lr * d, with d = g + weight_decay * p, then momentum buffers as PyTorch defines them:
    b = momentum * b + (1 - dampening) * d (b = d on the first step); d = d + momentum * b if nesterov
    else b."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group, p, d, x in self._gradients():
            mom = group["momentum"]
            if mom:
                st = self.state.setdefault(id(p), {})
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = d.copy()
                else:
                    buf = mom * buf + (1.0 - group["dampening"]) * d
                st["momentum_buffer"] = buf
                d = d + mom * buf if group["nesterov"] else buf
            _set(p, x - group["lr"] * d)
        return loss


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as torch.optim.Adam (amsgrad optional; weight_decay is
    L2 added to the gradient, not AdamW's decoupled decay)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameters: {betas}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group, p, g, x in self._gradients():
            lr, (b1, b2), eps, amsgrad = group["lr"], group["betas"], group["eps"], group["amsgrad"]
            xp = array_ns(x)
            st = self.state.setdefault(id(p), {})
            if not st:
                st["step"] = 0
                st["exp_avg"] = xp.zeros_like(x)
                st["exp_avg_sq"] = xp.zeros_like(x)
                if amsgrad:
                    st["max_exp_avg_sq"] = xp.zeros_like(x)
            st["step"] += 1
            t = st["step"]
            m = st["exp_avg"] = b1 * st["exp_avg"] + (1.0 - b1) * g
            v = st["exp_avg_sq"] = b2 * st["exp_avg_sq"] + (1.0 - b2) * g * g
            if amsgrad:
                v = st["max_exp_avg_sq"] = xp.maximum(st["max_exp_avg_sq"], v)
            bc1 = 1.0 - b1 ** t
            bc2 = 1.0 - b2 ** t
            denom = xp.sqrt(v) / math.sqrt(bc2) + eps
            _set(p, x - (lr / bc1) * m / denom)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW: p *= 1 - lr * wd
    before the Adam step, the gradient itself left alone."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)

    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        decays = []
        for group in self.param_groups:
            decays.append(group["weight_decay"])
            lr, wd = group["lr"], group["weight_decay"]
            if wd:
                for p in group["params"]:
                    if p._grad is not None:
                        _set(p, p._array * (1.0 - lr * wd))
            group["weight_decay"] = 0.0
        try:
            Adam.step(self)
        finally:
            for group, wd in zip(self.param_groups, decays, strict=True):
                group["weight_decay"] = wd
        return loss


class RMSprop(Optimizer):
    """torch.optim.RMSprop: v = alpha v + (1 - alpha) g^2; denominator sqrt(v - gbar^2) + eps when
    centered (gbar the running mean of g) else sqrt(v) + eps; optional momentum buffer
    b = mom b + g / denom."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if alpha < 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group, p, g, x in self._gradients():
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            mom, centered = group["momentum"], group["centered"]
            xp = array_ns(x)
            st = self.state.setdefault(id(p), {})
            if not st:
                st["step"] = 0
                st["square_avg"] = xp.zeros_like(x)
                if mom > 0:
                    st["momentum_buffer"] = xp.zeros_like(x)
                if centered:
                    st["grad_avg"] = xp.zeros_like(x)
            st["step"] += 1
            v = st["square_avg"] = alpha * st["square_avg"] + (1.0 - alpha) * g * g
            if centered:
                ga = st["grad_avg"] = alpha * st["grad_avg"] + (1.0 - alpha) * g
                denom = xp.sqrt(v - ga * ga) + eps
            else:
                denom = xp.sqrt(v) + eps
            if mom > 0:
                buf = st["momentum_buffer"] = mom * st["momentum_buffer"] + g / denom
                _set(p, x - lr * buf)
            else:
                _set(p, x - lr * g / denom)
        return loss


class Adagrad(Optimizer):
    """torch.optim.Adagrad: s += g^2; p -= clr g / (sqrt(s) + eps), clr = lr / (1 + (step - 1) lr_decay)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if lr_decay < 0.0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))

    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group, p, g, x in self._gradients():
            xp = array_ns(x)
            st = self.state.setdefault(id(p), {})
            if not st:
                st["step"] = 0
                st["sum"] = xp.full_like(x, group["initial_accumulator_value"])
            st["step"] += 1
            clr = group["lr"] / (1.0 + (st["step"] - 1) * group["lr_decay"])
            s = st["sum"] = st["sum"] + g * g
            _set(p, x - clr * g / (xp.sqrt(s) + group["eps"]))
        return loss


# ============================================================================================ lr_scheduler
class LRScheduler:
    """Sets each group's 'lr' from its 'initial_lr' and the epoch count; step() advances one epoch."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            if last_epoch == -1:
                g.setdefault("initial_lr", g["lr"])
            elif "initial_lr" not in g:
                raise KeyError("param 'initial_lr' is not specified in param_groups when resuming an "
                               "optimizer")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        for g, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [b * self.gamma ** self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1) -> None:
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        c = (1.0 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2.0
        return [self.eta_min + (b - self.eta_min) * c for b in self.base_lrs]
