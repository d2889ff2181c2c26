"""Neural-network building blocks on the eager Tensor: Module, Parameter, layers, losses, functional.

Kept thin on purpose: a layer is a Module whose forward is a few Tensor operations, so its backward
comes from the tape (and so from the one rule table) with nothing written here.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from . import mapping as M
from . import primitives as P
from . import tensor as T
from .autograd import bump_version, no_grad
from .tensor import Tensor


# ================================================================================================ Parameter
class Parameter(Tensor):
    """A Tensor that a Module registers as learnable: a leaf that requires grad unless told otherwise."""

    __slots__ = ()

    def __new__(cls, data: Any = None, requires_grad: bool = True) -> "Parameter":
        arr = data._array if isinstance(data, Tensor) else T._make_array(
            np.empty(0, np.float32) if data is None else data, None, None)
        p = T._tensor(cls, arr, False, None, 0, data._vc if isinstance(data, Tensor) else bytearray())
        if requires_grad:
            p.requires_grad = True
        return p

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)

    def __deepcopy__(self, memo: dict) -> "Parameter":
        p = Parameter(Tensor._wrap(self._array.copy()), self._rg)
        memo[id(self)] = p
        return p

    def __reduce_ex__(self, protocol: int) -> Any:
        return (Parameter, (T.tensor(self.tolist(), dtype=self.dtype), self._rg))


# =================================================================================================== Module
class Module:
    """Base class of layers and models: attributes that are Parameters or Modules are registered, so
    `parameters()`, `zero_grad()`, `state_dict()` and `train()/eval()` reach the whole tree."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required \"forward\" "
                                  "function")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # registration ------------------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__ and isinstance(value, (Parameter, Module)):
            raise AttributeError("cannot assign parameters or modules before Module.__init__() call")
        params, modules = self.__dict__.get("_parameters"), self.__dict__.get("_modules")
        if isinstance(value, Parameter):
            modules.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            self.__dict__.pop(name, None)
            modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(srcgrad.nn.Parameter or None expected)")
            params[name] = None
        elif modules is not None and name in modules:
            modules[name] = value
        elif name in self.__dict__.get("_buffers", {}):
            self._buffers[name] = value  # `self.running_mean = ...` replaces the buffer (state_dict sees it)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for table in ("_parameters", "_modules", "_buffers"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in ("_parameters", "_modules", "_buffers"):
            if name in self.__dict__.get(table, {}):
                del self.__dict__[table][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        self._buffers[name] = tensor

    def add_module(self, name: str, module: "Module | None") -> None:
        self._modules[name] = module

    register_module = add_module

    # traversal ---------------------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mprefix}.{name}" if mprefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for mprefix, m in self.named_modules(prefix=prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mprefix}.{name}" if mprefix else name), b

    def buffers(self) -> Iterator[Tensor]:
        for _, b in self.named_buffers():
            yield b

    # modes and gradients ---------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            _zero_grad(p, set_to_none)

    def apply(self, fn: Any) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Move/cast parameters in place (their identity is kept, so optimizers still hold them)."""
        for m in self.modules():
            for table in (m._parameters, m._buffers):
                for t in table.values():
                    if t is not None:
                        moved = t.detach().to(*args, **kwargs)
                        t._array = moved._array
                        if t._grad is not None:
                            t._grad = t._grad.to(*args, **kwargs)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device: Any = None) -> "Module":
        return self.to("cuda" if device is None else device)

    def float(self) -> "Module":  # noqa: A003
        return self.to(T.float32)

    def double(self) -> "Module":
        return self.to(T.float64)

    # state ------------------------------------------------------------------------------------------
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        out: OrderedDict[str, Tensor] = OrderedDict()
        for mprefix, m in self.named_modules(prefix=prefix.rstrip(".")):
            for table in (m._parameters, m._buffers):
                for name, t in table.items():
                    if t is not None:
                        out[f"{mprefix}.{name}" if mprefix else name] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> Any:
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               f"Missing key(s) in state_dict: {missing}.\n\t"
                               f"Unexpected key(s) in state_dict: {unexpected}.")
        with no_grad():
            for k, t in own.items():
                if k in state_dict:
                    src = state_dict[k]
                    src_arr = src._array if isinstance(src, Tensor) else np.asarray(src)
                    if tuple(src_arr.shape) != tuple(t._array.shape):
                        raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                           f"size mismatch for {k}: copying a param with shape "
                                           f"{T.Size(src_arr.shape)} from checkpoint, the shape in "
                                           f"current model is {T.Size(t._array.shape)}.")
                    t.copy_(Tensor._wrap(src_arr))
        return _IncompatibleKeys(missing, unexpected)

    # repr -------------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            mod = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {mod}")
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                return main + lines[0] + ")"
            main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._modules))


class _IncompatibleKeys(tuple):
    def __new__(cls, missing: list, unexpected: list) -> "_IncompatibleKeys":
        obj = super().__new__(cls, (missing, unexpected))
        obj.missing_keys, obj.unexpected_keys = missing, unexpected
        return obj

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"


def _zero_grad(p: Tensor, set_to_none: bool) -> None:
    if set_to_none:
        p._grad = None
    elif p._grad is not None:
        g = p._grad
        if g._node is not None:
            p._grad = Tensor._wrap(g._array * 0)
        else:  # a fresh array: never write into memory a gradient might share with something else
            xp = T.B.array_ns(g._array)
            g._array = xp.zeros_like(g._array)
            bump_version(g)


# =================================================================================================== layers
def _uniform(shape: tuple, bound: float, dtype: Any = None) -> np.ndarray:
    return T.rng().uniform(-bound, bound, size=shape).astype(T._float_dtype(dtype))


class Linear(Module):
    """y = x @ W.T + b, initialised like PyTorch: W and b uniform in ±1/sqrt(in_features) (which is
    kaiming_uniform with a=sqrt(5) for W)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = Parameter(T._finish(T._place(_uniform((out_features, in_features), bound, dtype),
                                                   device), False))
        if bias:
            self.bias = Parameter(T._finish(T._place(_uniform((out_features,), bound, dtype), device),
                                            False))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class ReLU(Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return relu(x, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return P.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return P.sigmoid(x)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x: Tensor) -> Tensor:
        return log_softmax(x, self.dim)


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape)
        s, e = self.start_dim % len(shape), self.end_dim % len(shape)
        return x.reshape(shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:])


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"


class Sequential(Module):
    """Modules applied in order; indexable and iterable."""

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, idx: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, idx: int) -> Module:
        return list(self._modules.values())[idx]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction


class MSELoss(_Loss):
    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return _reduce(P.abs(input - target), self.reduction)


class CrossEntropyLoss(_Loss):
    def __init__(self, weight: Any = None, size_average: Any = None, ignore_index: int = -100,
                 reduce: Any = None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(_legacy_reduction(size_average, reduce, reduction))
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    def __init__(self, weight: Any = None, size_average: Any = None, ignore_index: int = -100,
                 reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(_legacy_reduction(size_average, reduce, reduction))
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


# ======================================================================== more activations and layers
class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate='{self.approximate}'"


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SiLU(Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return silu(x)


def _const_param(shape: tuple, value: float, device: Any, dtype: Any) -> "Parameter":
    arr = np.full(shape, value, dtype=T._float_dtype(dtype))
    return Parameter(T._finish(T._place(arr, device), False))


class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) over the trailing normalized_shape dims, then * weight + bias."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        if elementwise_affine:
            self.weight = _const_param(shape, 1.0, device, dtype)
            if bias:
                self.bias = _const_param(shape, 0.0, device, dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Embedding(Module):
    """A lookup table: weight[idx]; weight drawn N(0, 1) (padding_idx's row zeroed and never trained)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: Any = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Any = None, _freeze: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: max_norm, scale_grad_by_freq and sparse are not supported")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None and padding_idx < 0:
            padding_idx += num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            arr = T.rng().standard_normal((num_embeddings, embedding_dim)).astype(T._float_dtype(dtype))
            if padding_idx is not None:
                arr[padding_idx] = 0
            self.weight = Parameter(T._finish(T._place(arr, device), False), requires_grad=not _freeze)
        else:
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None,
                        **kwargs: Any) -> "Embedding":
        rows, dim = tuple(embeddings.shape)
        return cls(rows, dim, padding_idx=padding_idx, _weight=embeddings.detach(), _freeze=freeze, **kwargs)

    def forward(self, idx: Tensor) -> Tensor:
        return embedding(idx, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


# ============================================================================================ more losses
class BCELoss(_Loss):
    def __init__(self, weight: Any = None, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(_legacy_reduction(size_average, reduce, reduction))
        self.weight = weight

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight: Any = None, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(_legacy_reduction(size_average, reduce, reduction))
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                pos_weight=self.pos_weight)


class HuberLoss(_Loss):
    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(_legacy_reduction(size_average, reduce, reduction))
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


# =============================================================================================== functional
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    out = P.matmul(x, M.t_(weight))
    return out if bias is None else out + bias


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    return x.relu_() if inplace else P.relu(x)


def tanh(x: Tensor) -> Tensor:
    return P.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    return P.sigmoid(x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return M.softplus_(x, beta, threshold)


def _dim(x: Tensor, dim: int | None) -> int:
    if dim is None:  # PyTorch's legacy choice for an implicit dim
        return 0 if x.ndim in (0, 1, 3) else 1
    return dim


def softmax(x: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    if dtype is not None:
        x = x.to(dtype)
    return P.softmax(x, axis=_dim(x, dim))


def log_softmax(x: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    if dtype is not None:
        x = x.to(dtype)
    return P.log_softmax(x, axis=_dim(x, dim))


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return P.mean(loss)
    if reduction == "sum":
        return P.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    return _reduce(P.abs(input - target), reduction)


def _target_weights(input: Tensor, tgt: Any, weight: Any, ignore_index: int) -> tuple:  # noqa: A002
    """Per-target weights (0 where ignored), target indices made safe to gather, and whether the plain
    unweighted mean applies (no weight, nothing ignored)."""
    xp = T.B.array_ns(tgt)
    valid = tgt != ignore_index
    plain = weight is None and bool(valid.all())
    safe = tgt if plain else xp.where(valid, tgt, 0)
    dt = input._array.dtype
    if weight is None:
        wt = valid.astype(dt)
    else:
        w = weight._array if isinstance(weight, Tensor) else xp.asarray(weight)
        wt = w.astype(dt)[safe] * valid.astype(dt)
    return safe, wt, plain


def _gather_classes(input: Tensor, safe: Any) -> Tensor:  # noqa: A002
    """input[n, safe[n, d...], d...] for input (N, C, d...) and safe (N, d...)."""
    xp = T.B.array_ns(safe)
    if safe.ndim == 1:
        return input[(xp.arange(safe.shape[0]), safe)]
    grid = xp.indices(safe.shape, sparse=True)
    return input[(grid[0], safe, *grid[1:])]


def nll_loss(input: Tensor, target: Tensor, weight: Any = None, size_average: Any = None,  # noqa: A002
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """-weight[t] * input[n, t, d...] with t = target[n, d...], for input (N, C, d...) or (C,) and class-index
    targets; entries equal to ignore_index count for nothing; 'mean' divides by the summed weights."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    tgt = target._array if isinstance(target, Tensor) else np.asarray(target)
    unbatched = input.ndim == 1
    if unbatched:
        input, tgt = input.unsqueeze(0), tgt.reshape(1)  # noqa: A001
    safe, wt, plain = _target_weights(input, tgt, weight, ignore_index)
    picked = _gather_classes(input, safe)
    loss = -picked if plain else -(picked * wt)
    if reduction == "none":
        return loss[0] if unbatched else loss
    if reduction == "sum":
        return P.sum(loss)
    if reduction == "mean":
        return P.mean(loss) if plain else P.sum(loss) / wt.sum()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _legacy_reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


def cross_entropy(input: Tensor, target: Tensor, weight: Any = None, size_average: Any = None,  # noqa: A002
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over classes (dim 1, or 0 for unbatched input) then the negative log likelihood, as
    torch.nn.functional.cross_entropy: class-index targets (N, d...) or class-probability targets (same
    shape as input, floating), weight=, ignore_index=, label_smoothing=."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    cdim = 1 if input.ndim > 1 else 0
    n_classes = input.shape[cdim]
    logp = log_softmax(input, cdim)
    wb = None
    if weight is not None:
        w = weight._array if isinstance(weight, Tensor) else np.asarray(weight)
        wb = w.astype(input._array.dtype).reshape((n_classes,) + (1,) * (input.ndim - cdim - 1))
    probabilities = isinstance(target, Tensor) and target.is_floating_point()
    if probabilities and tuple(target.shape) == tuple(input.shape):
        if label_smoothing > 0.0:
            target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
        weighted = logp * target if wb is None else logp * target * wb
        return _reduce(-weighted.sum(dim=cdim), reduction)
    nll = nll_loss(logp, target, weight=weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing <= 0.0:
        return nll
    tgt = target._array if isinstance(target, Tensor) else np.asarray(target)
    valid = (tgt != ignore_index).astype(input._array.dtype)
    smooth = -(logp if wb is None else logp * wb).sum(dim=cdim) * valid
    if reduction == "mean":
        denom = valid if wb is None else _target_weights(input, tgt, weight, ignore_index)[1]
        smooth = P.sum(smooth) / denom.sum()
    elif reduction == "sum":
        smooth = P.sum(smooth)
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if not training or p == 0.0:
        return x
    keep = (T.rng().random(tuple(x.shape)) >= p).astype(x._array.dtype) / (1.0 - p)
    return x * T._place(keep, x.device if x.is_cuda else None)


def pad(x: Tensor, pad: Any, mode: str = "constant", value: float = 0.0) -> Tensor:
    fn = M.TORCH_FUNCTIONS.get("nn.functional.pad")
    if fn is None:
        raise NotImplementedError("pad is not available in runtime.mapping")
    return fn(x, pad, mode=mode, value=value) if mode != "constant" else fn(x, pad, value=value)


# ================================================================== more functional (composed primitives)
def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); approximate='tanh' uses
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + P.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))
    if approximate != "none":
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return 0.5 * x * (1.0 + P.erf(x * (1.0 / math.sqrt(2.0))))


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return P.where(x > 0, x, x * negative_slope)


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, alpha (exp(x) - 1) elsewhere (the exp sees only the non-positive part, so a large x
    cannot make an inf whose zero gradient turns into nan)."""
    pos = x > 0
    return P.where(pos, x, alpha * P.expm1(P.where(pos, 0.0 * x, x)))


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    return x * P.sigmoid(x)


def layer_norm(x: Tensor, normalized_shape: Any, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size{list(x.shape)}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centred = x - P.mean(x, axis=axes, keepdims=True)
    var = P.mean(centred * centred, axis=axes, keepdims=True)
    out = centred / P.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, *args: Any,  # noqa: A002
              **kwargs: Any) -> Tensor:
    """weight[input]: the gradient scatter-adds into the rows used (the padding_idx row gets none)."""
    idx = input._array if isinstance(input, Tensor) else np.asarray(input)
    out = weight[idx]
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += weight.shape[0]
        out = P.where((idx == padding_idx)[..., None], out.detach(), out)
    return out


def _weighted(loss: Tensor, weight: Any) -> Tensor:
    return loss if weight is None else loss * weight


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Any = None, size_average: Any = None,  # noqa: A002
                         reduce: Any = None, reduction: str = "mean") -> Tensor:
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 as PyTorch does."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    log_x = P.clip(P.log(input), min=-100.0)
    log_1mx = P.clip(P.log(1.0 - input), min=-100.0)
    return _reduce(_weighted(-(target * log_x + (1.0 - target) * log_1mx), weight), reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Any = None,  # noqa: A002
                                     size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """(1 - t) x + lw softplus(-x) with lw = 1 + (pos_weight - 1) t: stable for any x."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    sp = P.softplus(-input)
    if pos_weight is not None:
        sp = (1.0 + (pos_weight - 1.0) * target) * sp
    return _reduce(_weighted((1.0 - target) * input + sp, weight), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,  # noqa: A002
               weight: Any = None) -> Tensor:
    d = P.abs(input - target)
    loss = P.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduce(_weighted(loss, weight), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average: Any = None, reduce: Any = None,  # noqa: A002
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    reduction = _legacy_reduction(size_average, reduce, reduction)
    d = P.abs(input - target)
    if beta == 0.0:
        return _reduce(d, reduction)
    return _reduce(P.where(d < beta, (0.5 / beta) * d * d, d - 0.5 * beta), reduction)


# ============================================================================================ nn.utils
def _param_list(parameters: Any) -> list:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters: Any, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: Any = None) -> Tensor:
    """Scale the gradients in place so that their joint norm is at most max_norm; returns the joint norm
    before clipping (as torch.nn.utils.clip_grad_norm_, coefficient max_norm / (norm + 1e-6))."""
    grads = [p.grad for p in _param_list(parameters) if p.grad is not None]
    norm_type = float(norm_type)
    with no_grad():
        if not grads:
            return T.tensor(0.0)
        if math.isinf(norm_type):
            norms = [g.detach().abs().max() for g in grads]
            total = norms[0] if len(norms) == 1 else M.stack_(norms).max()
        else:
            norms = [M.vector_norm(g.detach(), norm_type) for g in grads]
            total = M.vector_norm(M.stack_(norms), norm_type)
        if error_if_nonfinite and not bool(M.isfinite_(total)):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is "
                               "non-finite, so it cannot be clipped. To disable this error and scale the "
                               "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
        coef = min(float(max_norm) / (float(total) + 1e-6), 1.0)
        for g in grads:
            g.mul_(coef)
    return total


def clip_grad_value_(parameters: Any, clip_value: float, foreach: Any = None) -> None:
    """Clamp every gradient in place to [-clip_value, clip_value]."""
    with no_grad():
        for p in _param_list(parameters):
            if p.grad is not None:
                p.grad.clamp_(-float(clip_value), float(clip_value))


# ============================================================================================= nn.init
# In-place initialisers on Parameters (under no_grad), drawing from srcgrad's one generator
# (manual_seed seeds it); `generator=` takes a numpy Generator instead.
def _fill(tensor: Tensor, arr: Any) -> Tensor:
    with no_grad():
        tensor.copy_(Tensor._wrap(np.asarray(arr, dtype=T.np_dtype(tensor.dtype))))
    return tensor


def _gen(generator: Any) -> np.random.Generator:
    return generator if generator is not None else T.rng()


def calculate_gain(nonlinearity: str, param: Any = None) -> float:
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid")
    if nonlinearity in linear_fns:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple:
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * field, shape[0] * field


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, np.zeros(tuple(tensor.shape)))


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, np.ones(tuple(tensor.shape)))


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(tensor, np.full(tuple(tensor.shape), float(val)))


def eye_(tensor: Tensor) -> Tensor:
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill(tensor, np.eye(*tuple(tensor.shape)))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    return _fill(tensor, _gen(generator).uniform(a, b, size=tuple(tensor.shape)))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    return _fill(tensor, _gen(generator).normal(mean, std, size=tuple(tensor.shape)))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: Any = None) -> Tensor:
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: Any = None) -> Tensor:
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)), generator)
