"""The eager tape: graph nodes, the backward engine, and grad mode.

A Tensor produced by a recorded operation points at a `Node` (its `grad_fn`). A node remembers what the
derivative rule of its primitive needs (the input arrays, the output array, the static keyword
arguments) and an edge per positional input: `(node, output_nr)` of the tensor it came from, or None
when that input needs no gradient. Leaves that require grad end at an `AccumulateGrad` node, which adds
the incoming gradient into `leaf.grad`.

`backward` is micrograd's algorithm with dependency counts instead of recursion (graphs from long loops
are deep): count how many edges point at each reachable node, then sweep from the roots, handing a
node's summed cotangent to its rule once every consumer has contributed.

The rules are `rules.RULES[name].vjp`, the same table the compiler reads. Normally they run on raw
arrays; under `create_graph=True` they run on Tensors, so the backward pass is itself recorded and can
be differentiated again.
"""

from __future__ import annotations

import ast
import dis
import functools
import gc
import heapq
import itertools
import sys
import threading
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import profiler as _prof
from .array_rules import OuterSum, RankOne, dense, on_arrays
from .primitives import PRIMITIVES, shape_only_calls
from .rules import RULES


# ================================================================================================ grad mode
class _GradMode(threading.local):
    """Per-thread switch, as in PyTorch: a no_grad block in one thread leaves others recording."""

    enabled = True
    inference = False


_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _mode.enabled


def is_inference_mode_enabled() -> bool:
    return _mode.inference


class _ModeContext:
    """A context manager that is also a decorator (`@no_grad()` and `@no_grad`), restoring the previous
    mode on exit even when the block raises."""

    _target = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # `@no_grad` without parentheses: the class is called with the function itself
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]) and not kwargs:
            return cls()(args[0])
        return super().__new__(cls)

    def __init__(self) -> None:
        self._saved: list[tuple[bool, bool]] = []

    def _apply(self) -> None:
        _mode.enabled = self._target

    def __enter__(self) -> None:
        self._saved.append((_mode.enabled, _mode.inference))
        self._apply()

    def __exit__(self, *exc: Any) -> None:
        _mode.enabled, _mode.inference = self._saved.pop()

    def __call__(self, fn: Callable) -> Callable:
        ctx_type, ctx_args = type(self), self._ctor_args()

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with ctx_type(*ctx_args):
                return fn(*args, **kwargs)

        return wrapper

    def _ctor_args(self) -> tuple:
        return ()

    def clone(self) -> "_ModeContext":
        return type(self)(*self._ctor_args())


class no_grad(_ModeContext):
    """Operations inside do not record a graph: results have no grad_fn and do not require grad."""

    _target = False


class enable_grad(_ModeContext):
    """Re-enables recording inside a no_grad block."""

    _target = True


class set_grad_enabled(_ModeContext):
    """`set_grad_enabled(False)` switches recording off at once (function form) or for a `with` block."""

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self._target = bool(mode)
        self._prev = (_mode.enabled, _mode.inference)
        _mode.enabled = self._target

    def __enter__(self) -> None:
        self._saved.append(self._prev)  # the mode before construction, which already switched it

    def _ctor_args(self) -> tuple:
        return (self._target,)

    def __call__(self, fn: Callable) -> Callable:
        # As a decorator, construction must not leave the mode switched (PyTorch restores it too).
        _mode.enabled, _mode.inference = self._prev
        return super().__call__(fn)


class inference_mode(_ModeContext):
    """Like no_grad (srcgrad has no separate inference tensors); `inference_mode(False)` is a no-op."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not isinstance(args[0], bool) and not kwargs:
            return cls()(args[0])
        return object.__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        super().__init__()
        self.mode = bool(mode)

    def _apply(self) -> None:
        if self.mode:
            _mode.enabled = False
            _mode.inference = True

    def _ctor_args(self) -> tuple:
        return (self.mode,)


# ================================================================================================ versions
# Every in-place change bumps the tensor's version counter (a bytearray: its length is the version) and
# this global count. A node remembers the count when it was recorded; if nothing was modified in place
# since, backward skips comparing versions one by one (the common case costs one comparison).
INPLACE_COUNT = [0]
NODE_SEQ = itertools.count()  # see Node.seq


def bump_version(t: Any) -> None:
    """Record an in-place change of tensor `t`."""
    t._vc.append(0)
    INPLACE_COUNT[0] += 1


# ==================================================================================================== nodes
SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they "
    "have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph "
    "a second time or if you need to access saved tensors after calling backward.")


class Node:
    """Base of every grad_fn: edges to the nodes of its inputs, and optional gradient hooks."""

    # edges (each subclass stores them its own way): per input, the node its gradient goes to (None: no
    # gradient); nrs: which output of that node (None when all are output 0, the common case: no tuple
    # of pairs is built per operation).
    # seq: creation order (`next(NODE_SEQ)`). Every edge points to an older node, so running nodes
    # newest first runs each one after all its consumers: the backward sweep needs no dependency count.
    __slots__ = ("nrs", "hooks", "seq", "__weakref__")
    edges: tuple = ()
    n_outputs = 1
    plain = False  # a PrimNode class whose `apply` the backward sweep may inline (see `_sweep`)

    def name(self) -> str:
        return type(self).__name__

    @property
    def next_functions(self) -> tuple:
        nrs = self.nrs or (0,) * len(self.edges)
        return tuple((e, nr if e is not None else 0) for e, nr in zip(self.edges, nrs, strict=True))

    def register_hook(self, hook: Callable) -> "RemovableHandle":
        """`hook(grad_inputs, grad_outputs)` after this node ran (PyTorch's Node.register_hook)."""
        return _add_hook(self, ("post", hook))

    def register_prehook(self, hook: Callable) -> "RemovableHandle":
        """`hook(grad_outputs)` before this node runs; may return replacement gradients."""
        return _add_hook(self, ("pre", hook))

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self))}>"

    def apply(self, g: Any, create_graph: bool) -> Sequence[Any]:
        raise NotImplementedError

    def release(self) -> None:
        """Drop saved values once backward has used them (unless retain_graph)."""


def _add_hook(node: Node, entry: tuple) -> "RemovableHandle":
    if node.hooks is None:
        node.hooks = []
    node.hooks.append(entry)
    return RemovableHandle(node.hooks, entry)


class RemovableHandle:
    """Returned by register_hook: `handle.remove()` unregisters the hook."""

    __slots__ = ("_list", "_entry")

    def __init__(self, hooks: list, entry: Any) -> None:
        self._list, self._entry = hooks, entry

    def remove(self) -> None:
        try:
            self._list.remove(self._entry)
        except ValueError:
            pass

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class _Freed:
    """Stands in for a saved array after backward freed it: its shape and dtype stay readable (rules
    that only need a shape, like add's or sum's, still work a second time, as in PyTorch); any use of its
    values raises PyTorch's "backward through the graph a second time" error."""

    __slots__ = ("shape", "dtype")
    __array_ufunc__ = None
    __array_function__ = None

    def __init__(self, a: Any) -> None:
        self.shape, self.dtype = tuple(a.shape), a.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECOND_BACKWARD)

    def __array_namespace__(self, *args: Any, **kwargs: Any) -> Any:
        return _FREED_NAMESPACE  # its shape only: every function that would read values fails
    __array__ = _fail
    __getitem__ = _fail
    __bool__ = _fail
    __float__ = _fail
    for _op in ("add", "sub", "mul", "truediv", "pow", "matmul", "gt", "lt", "ge", "le", "neg", "abs",
                "floordiv", "mod"):
        locals()[f"__{_op}__"] = _fail
        locals()[f"__r{_op}__"] = _fail
    del _op

    def __eq__(self, other: Any) -> Any:  # noqa: D105 -- comparisons need the values too
        raise RuntimeError(SECOND_BACKWARD)

    __ne__ = __eq__
    __hash__ = object.__hash__


class _FreedNamespace:
    """The namespace of a freed saved value: `shape_of` answers (rules read shapes of freed inputs:
    `unbroadcast(g, x)`), anything else raises PyTorch's second-backward error."""

    @staticmethod
    def shape_of(a: Any) -> tuple:
        return tuple(a.shape)

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(SECOND_BACKWARD)


_FREED_NAMESPACE = _FreedNamespace()


# Saved arrays with at least this many elements are dropped as soon as backward has used them.
FREE_MIN_SIZE = 1024


def _only_saved_here(a: Any, holders: int = 3) -> bool:
    """Whether dropping the node's reference would free `a`'s memory: nobody else (a parameter, a live
    tensor) holds it. `holders` counts the references of the calling frame: the saved tuple, the loop
    variable and getrefcount's own argument (one more inside a generator)."""
    return sys.getrefcount(a) <= holders


def _free(v: Any) -> Any:
    return _Freed(v) if hasattr(v, "shape") else v


def _param_uses(f: Callable) -> set[str]:
    """The parameter names a vjp lambda reads (from its bytecode): the fallback of `_value_uses_in`
    when the rule's source cannot be analysed."""
    code = f.__code__
    params = set(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
    if code.co_flags & 0x04:  # *args
        params.add(code.co_varnames[code.co_argcount + code.co_kwonlyargcount])
    used: set[str] = set()
    for ins in dis.get_instructions(f):
        if ins.opname.startswith(("LOAD_FAST", "LOAD_DEREF")):
            names = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
            used.update(n for n in names if n in params)
    return used


# Callees that read only the shape/dtype of an argument, from the records of the primitives and the rule
# helpers (their `shape_only` fact): a rule that passes a saved input only to these (add's
# `unbroadcast(g, x)`, getitem's `zeros_like(x)`) does not need its values, so an in-place change of that
# input after the operation does not invalidate the rule (as in PyTorch, whose nodes then save only
# sizes). Value: which positional arguments are shape-only (None: all).
_SHAPE_ONLY_CALLS: dict[str, tuple[int, ...] | None] = shape_only_calls()
_SHAPE_ATTRS = {"shape", "dtype", "ndim", "size"}


def _value_uses_in(lam: ast.Lambda) -> set[str]:
    params = {a.arg for a in lam.args.args + lam.args.kwonlyargs}
    if lam.args.vararg is not None:
        params.add(lam.args.vararg.arg)
    shape_only: set[int] = set()  # ids of Name nodes used for their shape only
    for node in ast.walk(lam.body):
        if isinstance(node, ast.Attribute) and node.attr in _SHAPE_ATTRS and isinstance(node.value, ast.Name):
            shape_only.add(id(node.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in _SHAPE_ONLY_CALLS:
            positions = _SHAPE_ONLY_CALLS[node.func.id]
            for i, arg in enumerate(node.args):
                if isinstance(arg, ast.Name) and (positions is None or i in positions):
                    shape_only.add(id(arg))
    return {n.id for n in ast.walk(lam.body)
            if isinstance(n, ast.Name) and n.id in params and id(n) not in shape_only}


_RULE_LAMBDAS: dict[str, list] | None = None


def _rule_lambdas() -> dict[str, list]:
    """primitive name -> the vjp lambdas of its `defrule(...)` in rules.py, as AST nodes."""
    global _RULE_LAMBDAS
    if _RULE_LAMBDAS is None:
        _RULE_LAMBDAS = {}
        try:
            from . import rules as _rules  # noqa: PLC0415

            with open(_rules.__file__, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, TypeError):
            return _RULE_LAMBDAS
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "defrule"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                for kw in node.keywords:
                    if kw.arg == "vjp" and isinstance(kw.value, ast.List):
                        _RULE_LAMBDAS[node.args[0].value] = kw.value.elts
    return _RULE_LAMBDAS


def _rule_reads(prim_name: str, rule_fns: tuple) -> tuple | None:
    """Per vjp rule (one per positional argument): (does it read `ans`, the positions of the arguments
    whose values it reads); None when the rules take `*xs`. A value only needs saving (and checking for
    in-place changes) when a rule that will run, one for an argument that requires grad, reads it: `b * 3`
    needs only the 3, as in PyTorch."""
    lambdas = _rule_lambdas().get(prim_name)
    if lambdas is not None and len(lambdas) != len(rule_fns):
        lambdas = None
    reads = []
    for j, f in enumerate(rule_fns):
        if f is None:
            reads.append((False, frozenset()))
            continue
        lam = lambdas[j] if lambdas is not None else None
        used = _value_uses_in(lam) if isinstance(lam, ast.Lambda) else _param_uses(f)
        code = f.__code__
        if code.co_flags & 0x04:
            return None
        names = code.co_varnames[:code.co_argcount]
        reads.append((len(names) > 1 and names[1] in used,
                      frozenset(i for i, n in enumerate(names[2:]) if n in used)))
    return tuple(reads)


def _needs_for(reads: tuple | None, uses_ans: bool, uses_arg: tuple, mask: int) -> tuple:
    """(reads ans, per position: is it read) by the rules of the arguments in `mask` (bit i: argument i
    requires grad); positions past the tuple count as read, as for `uses_arg`."""
    if reads is None:
        return uses_ans, uses_arg
    ans = False
    pos: set = set()
    for j, (ra, ps) in enumerate(reads):
        if mask >> j & 1:
            ans = ans or ra
            pos |= ps
    n = builtins_max(len(uses_arg), len(reads))
    return ans, tuple(i in pos for i in range(n))


def builtins_max(a: int, b: int) -> int:
    return a if a > b else b


def _value_uses(prim_name: str, rule_fns: tuple) -> tuple[bool, tuple[bool, ...] | None]:
    """Which saved values the vjp rules of `prim_name` read beyond their shapes: (the output `ans`, per
    positional argument by position; None when the rule takes `*xs`, meaning all of them)."""
    lambdas = _rule_lambdas().get(prim_name)
    if lambdas is not None and len(lambdas) != len(rule_fns):
        lambdas = None
    uses_ans = False
    per_position: dict[int, bool] = {}
    variadic = False
    for j, f in enumerate(rule_fns):
        if f is None:
            continue
        lam = lambdas[j] if lambdas is not None else None
        used = _value_uses_in(lam) if isinstance(lam, ast.Lambda) else _param_uses(f)
        code = f.__code__
        names = code.co_varnames[:code.co_argcount]  # g, ans, then the primitive's positional args
        uses_ans = uses_ans or (len(names) > 1 and names[1] in used)
        for i, n in enumerate(names[2:]):
            per_position[i] = per_position.get(i, False) or n in used
        if code.co_flags & 0x04:  # `*xs`: one lambda for every argument, all saved
            variadic = True
    if variadic:
        return uses_ans, None
    n = max(per_position) + 1 if per_position else 0
    return uses_ans, tuple(per_position.get(i, False) for i in range(n))


class PrimNode(Node):
    """The grad_fn of one primitive call. Subclassed once per primitive so that `type(node).__name__`
    is PyTorch's name (SinBackward0, MulBackward0, ...); the subclass carries the rule."""

    # The edges of a one- or two-input node are kept in slots e0, e1 (ne = 1 or 2), not in a tuple: a
    # recorded operation then leaves one long-lived object, not two, for Python's cyclic garbage collector
    # to scan again and again while a long graph is recorded. Otherwise (ne = -1) e0 holds the tuple.
    __slots__ = ("e0", "e1", "ne", "args", "kwargs", "ans", "vcs", "vers", "epoch", "freed")
    prim: Any = None
    vjps: tuple = ()
    array_vjps: tuple = ()  # the same rules, calling primitive implementations directly (array_rules)
    variadic = False
    uses_ans = True
    uses_arg: tuple = ()   # per positional parameter: does some vjp read it?
    rule_reads: tuple | None = None  # per vjp rule: (reads ans, positions read); None: all
    need2: tuple = ((True, True, True),) * 4  # see node_class
    need_cache: dict = {}
    param_names: tuple = ()

    @classmethod
    def needs(cls, mask: int) -> tuple:
        """(reads ans, per position: is it read) when the arguments in bit-mask `mask` require grad."""
        r = cls.need_cache.get(mask)
        if r is None:
            r = cls.need_cache[mask] = _needs_for(cls.rule_reads, cls.uses_ans, cls.uses_arg, mask)
        return r

    def __init__(self, edges: tuple, args: tuple, kwargs: dict, ans: Any, vcs: tuple, vers: tuple) -> None:
        self.set_edges(edges)
        self.nrs = None
        self.hooks = None
        self.seq = next(NODE_SEQ)
        self.args = args
        self.kwargs = kwargs
        self.ans = ans
        self.vcs = vcs      # version counters of the tensor arguments and, last, of the output
        self.vers = vers    # their values when the operation ran
        self.epoch = INPLACE_COUNT[0]
        self.freed = False

    @property
    def edges(self) -> tuple:  # type: ignore[override]
        ne = self.ne
        return (self.e0,) if ne == 1 else (self.e0, self.e1) if ne == 2 else self.e0

    def set_edges(self, edges: tuple) -> None:
        n = len(edges)
        if n == 1:
            self.e0, self.e1, self.ne = edges[0], None, 1
        elif n == 2:
            self.e0, self.e1, self.ne = edges[0], edges[1], 2
        else:
            self.e0, self.e1, self.ne = tuple(edges), None, -1

    def _check_versions(self) -> None:
        for i, (vc, v) in enumerate(zip(self.vcs, self.vers, strict=True)):
            if vc is not None and len(vc) != v:
                if i == len(self.vcs) - 1:
                    which = f"output 0 of {self.name()}"
                else:
                    e = self.edges[i]
                    which = (f"output {self.nrs[i] if self.nrs else 0} of {e.name()}" if e is not None
                             and type(e) is not AccumulateGrad else "a leaf tensor")
                a = self.ans if i == len(self.vcs) - 1 else self.args[i]
                dt, shape = getattr(a, "dtype", type(a).__name__), list(getattr(a, "shape", ()))
                desc = f"[{dt} tensor of shape {shape}]"
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: {desc}, which is {which}, is at version {len(vc)}; expected "
                    f"version {v} instead. It was saved by {self.name()} for its backward. Hint: clone() "
                    "the tensor before modifying it in place.")

    def apply(self, g: Any, create_graph: bool) -> Sequence[Any]:
        args, ans = self.args, self.ans
        if self.freed:
            # A second backward without retain_graph: the rule sees stand-ins whose shapes work and
            # whose values raise, so shape-only rules (add, sum, reshape) run again, as in PyTorch.
            args, ans = tuple(_free(a) for a in args), _free(ans)
        if self.epoch != INPLACE_COUNT[0]:
            self._check_versions()
        if create_graph:
            args, ans = self._graph_values(args, ans)
        kwargs = self.kwargs
        vjps = self.vjps if create_graph else self.array_vjps
        if self.variadic:  # one lambda for all arguments, told which one by `argnum`
            f = vjps[0]
            return [None if e is None or f is None else dense(f(g, ans, *args, argnum=i, **kwargs))
                    for i, e in enumerate(self.edges)]
        edges = self.edges
        if len(vjps) < len(edges):  # (vjps is padded to the primitive's arity when the class is made)
            vjps = vjps + (None,) * (len(edges) - len(vjps))
        return [None if e is None or f is None else dense(f(g, ans, *args, **kwargs))
                for e, f in zip(edges, vjps, strict=False)]

    def _graph_values(self, args: tuple, ans: Any) -> tuple[tuple, Any]:
        """Tensors standing for the saved values, wired into the graph, so the rule is recorded."""
        from .tensor import Tensor  # noqa: PLC0415 -- tensor imports this module

        vals = []
        nrs = self.nrs or (0,) * len(self.edges)
        for a, e, nr in zip(args, self.edges, nrs, strict=True):
            if e is None:
                vals.append(Tensor._wrap(a) if hasattr(a, "shape") else a)
            elif type(e) is AccumulateGrad:
                vals.append(e.variable)
            else:
                vals.append(Tensor._wrap(a, True, e, nr))
        return tuple(vals), Tensor._wrap(ans, True, self, 0)

    def release(self) -> None:
        """Drop saved arrays after backward. Small ones are kept (replacing them would cost more than
        they hold); `freed` makes a second backward see every saved value as a stand-in all the same."""
        self.freed = True
        for a in self.args:
            if getattr(a, "size", 0) >= FREE_MIN_SIZE and _only_saved_here(a):
                self.args = tuple(_free(a) if getattr(a, "size", 0) >= FREE_MIN_SIZE and
                                  _only_saved_here(a, 4) else a for a in self.args)
                break
        ans = self.ans
        if getattr(ans, "size", 0) >= FREE_MIN_SIZE and _only_saved_here(ans):
            self.ans = _free(ans)

    @property
    def saved_tensors_freed(self) -> bool:
        """True once backward ran through this node without retain_graph."""
        return self.freed


class AccumulateGrad(Node):
    """The end of a leaf's edge: adds the incoming gradient into `variable.grad`."""

    __slots__ = ("variable",)

    def __init__(self, variable: Any) -> None:
        self.nrs = None
        self.hooks = None
        self.seq = next(NODE_SEQ)
        self.variable = variable

    def apply(self, g: Any, create_graph: bool) -> Sequence[Any]:
        accumulate(self.variable, g, create_graph)
        return ()


def accumulate(var: Any, g: Any, create_graph: bool) -> None:
    """leaf.grad += g, casting to the leaf's dtype. The first gradient is copied so that `.grad` never
    aliases a user's array or another leaf's gradient (add passes one cotangent to both inputs)."""
    if var._hooks:
        g = _leaf_hooks(var, g, create_graph)
    if create_graph:
        _accumulate_graph(var, g)
        return
    arr = var._array
    if g.shape != arr.shape:
        raise RuntimeError(f"Function AccumulateGrad returned an invalid gradient: got shape "
                           f"{list(g.shape)}, expected {list(arr.shape)}")
    if g.dtype != arr.dtype:
        g = g.astype(arr.dtype)
    old = var._grad
    if old is None:
        # Keep a fresh gradient as it is; copy one that something else may see or write (the user's own
        # array, the cotangent add hands to both of its inputs, a view of memory another array holds):
        # references held here are the sweep's `g`, this parameter and getrefcount's argument, so more
        # means another holder. A view whose base only it holds (the transposed product that `W.T`'s
        # rule returns) is kept too: copying it would cost a strided pass over the whole gradient.
        if (type(g) is not np.ndarray or sys.getrefcount(g) > 3
                or (g.base is not None and sys.getrefcount(g.base) > 2)):
            g = g.copy()
        var._grad = (_TENSOR[0] if _TENSOR else _tensor_cls())._wrap(g)
    else:
        old._array = old._array + g
        bump_version(old)


_TENSOR: list[type] = []


def _tensor_cls() -> type:
    if not _TENSOR:
        from .tensor import Tensor  # noqa: PLC0415 -- tensor imports this module

        _TENSOR.append(Tensor)
    return _TENSOR[0]


def _leaf_hooks(var: Any, g: Any, create_graph: bool) -> Any:
    Tensor = _tensor_cls()
    for h in var._hooks:
        r = h(g if isinstance(g, Tensor) else Tensor._wrap(g))
        if r is not None:
            g = r if create_graph else (r._array if isinstance(r, Tensor) else r)
    return g


def _accumulate_graph(var: Any, g: Any) -> None:
    """Under create_graph the gradient is a Tensor with a history: .grad keeps it."""
    Tensor = _tensor_cls()
    if not isinstance(g, Tensor):
        g = Tensor._wrap(g)
    if g.dtype != var.dtype:
        g = g.to(var.dtype)
    var.grad = g if var.grad is None else var.grad + g


class FunctionNode(Node):
    """The grad_fn of a custom `autograd.Function` (and of compiled functions): its backward is user code
    that receives and returns Tensors."""

    __slots__ = ("edges", "ctx", "fn_cls", "n_out", "__dict__")

    def name(self) -> str:
        return f"{self.fn_cls.__name__}Backward"

    @property
    def n_outputs(self) -> int:  # type: ignore[override]
        return self.n_out

    def apply(self, g: Any, create_graph: bool) -> Sequence[Any]:
        from .tensor import Tensor  # noqa: PLC0415

        grads = g if isinstance(g, list) else [g]
        ctx = self.ctx
        if ctx is None:
            raise RuntimeError(SECOND_BACKWARD)
        gt = []
        for i, gi in enumerate(grads):
            if gi is None:
                gi = ctx._zeros[i]()
            gt.append(gi if isinstance(gi, Tensor) else Tensor._wrap(gi))
        with set_grad_enabled(create_graph):
            res = self.fn_cls.backward(ctx, *gt)
        if not isinstance(res, tuple):
            res = (res,)
        out = []
        for e, r in zip(self.edges, res, strict=False):
            if e is None or r is None:
                out.append(None)
            elif create_graph:
                out.append(r if isinstance(r, Tensor) else Tensor._wrap(r))
            else:
                out.append(r._array if isinstance(r, Tensor) else r)
        out.extend([None] * (len(self.edges) - len(out)))
        return out

    def release(self) -> None:
        if self.ctx is not None:
            self.ctx._release()


# ---------------------------------------------------------------------------------------- node classes
_NODE_CLASSES: dict[str, type] = {}


def node_class(prim_name: str, variant: str | None = None) -> type:
    """The PrimNode subclass for a primitive (created on first use, so primitives added later work)."""
    key = prim_name if variant is None else variant
    cls = _NODE_CLASSES.get(key)
    if cls is None:
        rule = RULES.get(prim_name)
        if rule is None:
            raise RuntimeError(f"srcgrad: primitive {prim_name!r} has no derivative rule in rules.RULES; "
                               "it cannot be differentiated (use .detach() or no_grad() around it)")
        name = variant or PRIMITIVES[prim_name].node_name
        uses_ans, uses_arg = _value_uses(prim_name, rule.vjp)
        reads = None if rule.variadic else _rule_reads(prim_name, rule.vjp)
        uses_t = () if uses_arg is None else uses_arg
        # need2[ra + 2 * rb]: (reads arg 0, reads arg 1, reads ans) for a two-argument call in which
        # argument 0 / 1 requires grad (ra, rb): the operators' fast path reads it
        need2 = tuple((lambda ua: (ua[1][0] if len(ua[1]) > 0 else True,
                                   ua[1][1] if len(ua[1]) > 1 else True, ua[0]))(
            _needs_for(reads, uses_ans, uses_t, m)) for m in range(4))
        impl = PRIMITIVES[prim_name].impl
        code = impl.__code__
        pos = code.co_varnames[:code.co_argcount]
        vjps = tuple(rule.vjp) + (None,) * max(0, len(pos) - len(rule.vjp)) if not rule.variadic \
            else tuple(rule.vjp)
        cls = type(name, (PrimNode,), {
            "__slots__": (), "prim": PRIMITIVES[prim_name], "vjps": vjps, "uses_ans": uses_ans,
            "array_vjps": tuple(on_arrays(f) for f in vjps),
            "param_names": pos, "__module__": __name__, "variadic": rule.variadic,
            # plain: the sweep may call the rules itself (one per positional argument; no `*args`)
            "plain": not rule.variadic and not code.co_flags & 0x04,
            "uses_arg": uses_t,  # () with i >= len: checked
            "rule_reads": reads, "need2": need2, "need_cache": {},
        })
        _NODE_CLASSES[key] = cls
    return cls


# ================================================================================================== engine
def _collect(roots: Iterable[Node]) -> dict[Node, int]:
    """How many edges point at each node reachable from `roots` (roots start at 0)."""
    deps: dict[Node, int] = {}
    stack = []
    for r in roots:
        if r not in deps:
            deps[r] = 0
            stack.append(r)
    while stack:
        n = stack.pop()
        for m in n.edges:
            if m is not None:
                if m in deps:
                    deps[m] += 1
                else:
                    deps[m] = 1
                    stack.append(m)
    return deps


def _useful(roots: list[Node], deps: dict[Node, int], targets: set[Node]) -> tuple[set[Node], set[Node]]:
    """(useful, runs): the nodes from which some target can be reached (their gradient is needed),
    and among them those whose rule must run (some input leads on to a target)."""
    order = []
    left = dict(deps)
    ready = [r for r in dict.fromkeys(roots) if left[r] == 0]
    while ready:
        n = ready.pop()
        order.append(n)
        for m in n.edges:
            if m is not None:
                left[m] -= 1
                if left[m] == 0:
                    ready.append(m)
    useful: set[Node] = set()
    runs: set[Node] = set()
    for n in reversed(order):
        for m in n.edges:
            if m is not None and m in useful:
                runs.add(n)
                useful.add(n)
                break
        else:
            if n in targets:
                useful.add(n)
    return useful, runs


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def run_backward(roots: Sequence[tuple[tuple, Any]], retain_graph: bool, create_graph: bool,
                 targets: Sequence[tuple] | None = None, accumulate_leaves: bool = True) -> dict:
    """Propagate gradients from `roots` (pairs of an edge `(node, nr)` and its gradient).

    accumulate_leaves: add into `.grad` of leaves (tensor.backward); autograd.grad passes False and gets
    the gradients of `targets` (edges) back in a dict instead.
    Returns {target edge: gradient}.
    """
    root_nodes = [e[0] for e, _ in roots]
    buf: dict[Node, Any] = {}
    for (node, nr), g in roots:
        if node.n_outputs == 1:
            buf[node] = _add(buf.get(node), g)
        else:
            _deposit_output(buf, node, nr, g)
    prev_mode = _mode.enabled
    _mode.enabled = create_graph
    # The sweep frees the graph by reference counting and creates no cycles: pausing the cyclic
    # collector keeps it from rescanning the whole (large, about to die) graph over and over.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if targets is None and _prof._ACTIVE is None:
            _sweep([(-n.seq, n) for n in buf], buf, retain_graph, create_graph)
            return {}
        deps = _collect(root_nodes)
        ready = [r for r in dict.fromkeys(root_nodes) if deps[r] == 0]
        return _sweep_general(ready, deps, buf, root_nodes, retain_graph, create_graph, targets,
                              accumulate_leaves)
    finally:
        _mode.enabled = prev_mode
        if gc_was_enabled:
            gc.enable()


def _sum_into(buf: dict, m: "Node", gi: Any) -> None:
    """buf[m] += gi. In place when the sweep is the array's only holder (a sum it made earlier, or a
    cotangent nothing else kept): a node used at every step of a loop, such as a weight, then receives
    its hundreds of contributions without a new array each time. Anything another object can see -- a
    view, a user's array, a cotangent also sent down another edge -- has more references and is summed
    into a new array."""
    old = buf[m]
    if type(old) is OuterSum:
        old.add_dense(gi)
        return
    if (type(old) is np.ndarray and type(gi) is np.ndarray and old.base is None
            and sys.getrefcount(old) == 3  # references: buf, `old`, getrefcount's argument
            and old.shape == gi.shape and old.dtype is gi.dtype):
        try:
            np.add(old, gi, out=old)
            return
        except ValueError:  # read-only
            pass
    buf[m] = old + gi


def _deposit(buf: dict, m: "Node", nr: int, gi: Any) -> bool:
    """Add cotangent gi for output nr of node m. True when it is m's first (m is then to be scheduled).
    (The common case is written out in `_sweep` itself.)"""
    first = m not in buf
    if m.n_outputs != 1:
        _deposit_output(buf, m, nr, gi)
    elif first:
        buf[m] = gi
    else:
        _sum_into(buf, m, gi)
    return first


def _finish(n: "Node", g: Any, grads: Sequence[Any], buf: dict, retain_graph: bool) -> list:
    """The sweeps' general case, after node n's rules gave `grads`: post-hooks, freeing the saved values,
    and a deposit per edge. Returns the nodes that got their first cotangent."""
    if n.hooks:
        _run_posthooks(n, grads, g)
    if not retain_graph:
        n.release()
    nrs = n.nrs
    firsts = []
    for i, (m, gi) in enumerate(zip(n.edges, grads, strict=False)):
        if m is not None and gi is not None and _deposit(buf, m, nrs[i] if nrs else 0, gi):
            firsts.append(m)
    return firsts


def _schedule(heap: list, nxt: "Node | None", m: "Node") -> "Node":
    """`_sweep`'s scheduling of a node given its first cotangent: the newer of m and `nxt` (the node to
    run next) becomes `nxt`, the other goes on the heap. Returns the new `nxt`."""
    if nxt is None:
        return m
    if m.seq > nxt.seq:
        heapq.heappush(heap, (-nxt.seq, nxt))
        return m
    heapq.heappush(heap, (-m.seq, m))
    return nxt


def _add_rank_one(buf: dict, m: "Node", r: RankOne) -> None:
    """Add an outer product, as its factors, to the buffer of leaf node m (which already has one)."""
    acc = buf[m]
    if type(acc) is OuterSum:
        acc.add(r)
    else:
        buf[m] = OuterSum(r, acc)


def _deposit_output(buf: dict, m: "Node", nr: int, g: Any) -> None:
    """Add cotangent g for output `nr` of a node with several outputs (one-output nodes are summed
    inline by the sweeps: the common case stays free of a call)."""
    lst = buf.setdefault(m, [None] * m.n_outputs)
    lst[nr] = _add(lst[nr], g)


def _sweep(heap: list, buf: dict, retain_graph: bool, create_graph: bool) -> None:
    """The common case, `loss.backward()`: every node with a gradient runs, newest first (`Node.seq`),
    so a node's cotangent is complete when it runs; leaves accumulate.

    `heap` holds (-seq, node) for the nodes that have a cotangent in `buf` and have not run yet, except
    `nxt`: a node just given its first cotangent that is newer than all of them, which runs next
    without a trip through the heap (along a chain of operations, that is every node)."""
    pop = buf.pop
    heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
    heapq.heapify(heap)
    fast = not create_graph
    nxt = None
    while True:
        if nxt is not None:
            n = heapreplace(heap, (-nxt.seq, nxt))[1] if heap and -heap[0][0] > nxt.seq else nxt
            nxt = None
        elif heap:
            n = heappop(heap)[1]
        else:
            break
        g = pop(n)
        if type(g) is OuterSum:
            g = g.value()
        if n.hooks:
            g = _run_prehooks(n, g)
        tn = type(n)
        if tn is AccumulateGrad:
            accumulate(n.variable, g, create_graph)
            continue
        if tn.plain and fast and not n.hooks and not n.freed and n.epoch == INPLACE_COUNT[0]:
            # PrimNode.apply's common case, inlined: each rule's cotangent goes straight to its edge
            vjps, args, kwargs, ans, ne = tn.array_vjps, n.args, n.kwargs, n.ans, n.ne
            i = 0
            for m in ((n.e0,) if ne == 1 else (n.e0, n.e1) if ne == 2 else n.e0):  # `n.edges`, inlined
                if m is not None:
                    f = vjps[i]
                    if f is not None:
                        gi = f(g, ans, *args, **kwargs) if kwargs else f(g, ans, *args)
                        if gi is not None:
                            if type(gi) is RankOne:  # a weight's outer product: summed as factors
                                if type(m) is not AccumulateGrad:
                                    gi = gi.dense()
                                elif m in buf:
                                    _add_rank_one(buf, m, gi)
                                    i += 1
                                    continue
                                else:
                                    gi = OuterSum(gi)
                            if m.n_outputs != 1:
                                if _deposit(buf, m, n.nrs[i] if n.nrs else 0, gi):
                                    nxt = _schedule(heap, nxt, m)
                            elif m in buf:
                                _sum_into(buf, m, gi)
                            else:  # `_deposit` and `_schedule`, written out for the common case
                                buf[m] = gi
                                if nxt is None:
                                    nxt = m
                                elif m.seq > nxt.seq:
                                    heappush(heap, (-nxt.seq, nxt))
                                    nxt = m
                                else:
                                    heappush(heap, (-m.seq, m))
                i += 1
            args = ans = gi = None  # release() counts references to the saved values
            if not retain_graph:
                n.release()
            continue
        for m in _finish(n, g, n.apply(g, create_graph), buf, retain_graph):
            nxt = _schedule(heap, nxt, m)


def _sweep_general(ready: list, deps: dict, buf: dict, root_nodes: list, retain_graph: bool,
                   create_graph: bool, targets: Sequence[tuple] | None, accumulate_leaves: bool) -> dict:
    """The sweep with gradient capture for `targets` (autograd.grad, backward(inputs=...)), pruning of
    nodes that lead to no target, and profiler events around each node."""
    target_nodes: dict[Node, list] = {}
    if targets is not None:
        for e in targets:
            target_nodes.setdefault(e[0], []).append(e[1])
    useful, runs = _useful(root_nodes, deps, set(target_nodes)) if targets is not None else (None, None)
    captured: dict[tuple, Any] = {}
    profiling = _prof._ACTIVE is not None
    while ready:
        n = ready.pop()
        g = buf.pop(n, None)
        edges = n.edges
        if g is not None and (useful is None or n in useful):
            if n.hooks:
                g = _run_prehooks(n, g)
            if n in target_nodes:
                for nr in target_nodes[n]:
                    captured[(n, nr)] = g if n.n_outputs == 1 else g[nr]
            if type(n) is AccumulateGrad:
                if accumulate_leaves and (targets is None or n in target_nodes):
                    if profiling:
                        with _prof.record_function("AccumulateGrad"):
                            n.apply(g, create_graph)
                    else:
                        n.apply(g, create_graph)
                continue
            if runs is not None and n not in runs:
                grads = ()
            elif profiling:
                with _prof.record_function(n.name()):
                    grads = n.apply(g, create_graph)
            else:
                grads = n.apply(g, create_graph)
            _finish(n, g, grads, buf, retain_graph)
            grads = None
        elif not retain_graph and g is not None:
            n.release()
        for m in edges:
            if m is not None:
                d = deps[m] - 1
                deps[m] = d
                if d == 0:
                    ready.append(m)
    return captured


def _run_prehooks(n: Node, g: Any) -> Any:
    from .tensor import Tensor  # noqa: PLC0415

    for kind, hook in list(n.hooks):
        if kind == "tensor":   # a Tensor.register_hook on a non-leaf: (output_nr, fn)
            nr, fn = hook
            cur = g if n.n_outputs == 1 else g[nr]
            if cur is None:
                continue
            r = fn(cur if isinstance(cur, Tensor) else Tensor._wrap(cur))
            if r is not None:
                r = r if isinstance(cur, Tensor) else (r._array if isinstance(r, Tensor) else r)
                if n.n_outputs == 1:
                    g = r
                else:
                    g[nr] = r
        elif kind == "pre":
            r = hook(tuple(_as_tensor(x) for x in (g if isinstance(g, list) else [g])))
            if r is not None:
                r = [x._array if isinstance(x, Tensor) and not isinstance(g, Tensor) else x for x in r]
                g = r if isinstance(g, list) else r[0]
    return g


def _run_posthooks(n: Node, grads: Sequence[Any], g: Any) -> None:
    for kind, hook in list(n.hooks):
        if kind == "post":
            hook(tuple(_as_tensor(x) for x in grads), tuple(_as_tensor(x) for x in
                                                              (g if isinstance(g, list) else [g])))


def _as_tensor(x: Any) -> Any:
    from .tensor import Tensor  # noqa: PLC0415

    return x if x is None or isinstance(x, Tensor) else Tensor._wrap(x)
