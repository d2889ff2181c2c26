"""Stage 1: a Python function -> its gast tree, with everything needed to resolve the names it uses.

`FunctionInfo` holds the parsed `FunctionDef` (decorators removed), the file and line offset for error
messages and provenance comments, and the function's namespaces (globals, closure cells, builtins), so
later stages can ask what `np.sin` or `helper` *is* at transform time. `fence` rejects the syntax the
compiler does not differentiate, before any transform runs, with a message that points at the user's line.
"""

from __future__ import annotations

import builtins
import copy
import inspect
import linecache
import os
import textwrap
import types
import weakref
from dataclasses import dataclass, field
from typing import Any

import gast

from srcgrad.desugar import lower
from srcgrad.errors import TransformError, located
from srcgrad.flatten import flatten_parameters, localize_dicts
from srcgrad.outputs import rewrite_returns

LOCAL = object()  # resolve(): the name is a local variable of the function
UNBOUND = object()  # resolve(): the name is not bound anywhere (yet)


# ------------------------------------------------------------------------------ what a build read
class Dependencies:
    """The non-local bindings a build read (a global, a closure cell, a module attribute) and what they
    held. Generated code is valid only while each still holds the same function, module or class (the
    compiler resolved calls through them), and a value of the same type (values themselves are read
    again on every call). `valid()` is the cheap check made per call."""

    __slots__ = ("same", "typed", "defaults")

    def __init__(self) -> None:
        self.same: dict[tuple[int, str], tuple[Any, str, Any]] = {}   # identity must hold
        self.typed: dict[tuple[int, str], tuple[Any, str, type]] = {}  # the type must hold
        # a function's own defaults (a call that omits them runs a build keyed on them; keyword-only ones
        # are written into the generated signature): the function held weakly (a cached transform does
        # not keep it alive), its defaults by identity (`f.__defaults__ = (5.0,)` rebuilds)
        self.defaults: dict[int, tuple[weakref.ref, Any, Any]] = {}

    def add(self, container: Any, key: str, value: Any) -> None:
        if isinstance(value, (bool, int, float, complex, str, bytes, type(None))) or hasattr(value, "shape"):
            self.typed[(id(container), key)] = (container, key, type(value))
        else:
            self.same[(id(container), key)] = (container, key, value)

    def add_defaults(self, fn: Any) -> None:
        self.defaults[id(fn)] = (weakref.ref(fn), fn.__defaults__, fn.__kwdefaults__)

    def update(self, other: "Dependencies") -> None:
        self.same.update(other.same)
        self.typed.update(other.typed)
        self.defaults.update(other.defaults)

    def valid(self) -> bool:
        for container, key, value in self.same.values():
            if _current(container, key) is not value:
                return False
        for container, key, kind in self.typed.values():
            if type(_current(container, key)) is not kind:
                return False
        for ref, defaults, kwdefaults in self.defaults.values() if self.defaults else ():
            fn = ref()
            if fn is None or fn.__defaults__ is not defaults or fn.__kwdefaults__ is not kwdefaults:
                return False
        return True


_MISSING = object()


def _current(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key, _MISSING)
    if key == "":  # a closure cell
        try:
            return container.cell_contents
        except ValueError:
            return _MISSING
    return getattr(container, key, _MISSING)


# the builds in progress (a build may start another: a callee, a variant); each records what it reads
_RECORDING: list[Dependencies] = []


def record(container: Any, key: str, value: Any) -> None:
    """Note that the build in progress read `key` of `container` (a globals dict, a closure cell with
    key "", or a module or class) and found `value`."""
    for deps in _RECORDING:
        deps.add(container, key, value)


class recording:
    """`with recording() as deps:` collects what the builds inside read."""

    def __enter__(self) -> Dependencies:
        self.deps = Dependencies()
        _RECORDING.append(self.deps)
        return self.deps

    def __exit__(self, *exc: Any) -> None:
        _RECORDING.remove(self.deps)


def merge_into_recording(deps: "Dependencies | None") -> None:
    """A cached piece of generated code (a callee pair) is used by the build in progress: what it was
    built from is part of what this build depends on."""
    if deps is not None:
        for current in _RECORDING:
            current.update(deps)


@dataclass
class FunctionInfo:
    """A user function, parsed: the tree, where it came from, and its namespaces."""

    fn: Any
    node: gast.FunctionDef
    filename: str
    line_offset: int  # user line = tree line + line_offset
    lines: list[str]  # the function's source lines (tree line 1 = lines[0])
    globals: dict
    closure: dict  # free variable name -> cell
    locals: set[str] = field(default_factory=set)
    # tree lines of code inlined from other functions (desugar.py): tree line -> (file, line, text)
    borrowed: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.name

    def user_lineno(self, lineno: int) -> int:
        if lineno in self.borrowed:
            return self.borrowed[lineno][1]
        return lineno + self.line_offset

    def source_line(self, lineno: int) -> str:
        if lineno in self.borrowed:
            return self.borrowed[lineno][2]
        if 1 <= lineno <= len(self.lines):
            return self.lines[lineno - 1].rstrip()
        return ""

    def filename_of(self, lineno: int | None) -> str:
        """The file tree line `lineno` comes from (another function's, for code inlined from it)."""
        if lineno in self.borrowed:
            return self.borrowed[lineno][0]
        return self.filename

    def signature(self, ref: Any) -> gast.arguments:
        """The function's parameters for generated code, with each default that is not a literal bound to
        the object the function itself holds (`w=W0`, `y=np.array([...])`): generated code has its own
        globals, and a default is evaluated once, at definition, in Python. `ref(obj, preferred)` names
        an object in the generated code's namespace."""
        args = copy.deepcopy(self.node.args)
        fn = getattr(self.fn, "__func__", self.fn)
        values = list(getattr(fn, "__defaults__", None) or ())
        kw_values = dict(getattr(fn, "__kwdefaults__", None) or {})
        positional = args.args[len(args.args) - len(args.defaults):]

        def bound(expr: Any, param: str, value: Any) -> Any:
            if isinstance(expr, gast.Constant) and type(expr.value) is type(value) and expr.value == value:
                return expr  # the literal still holds (`f.__defaults__ = (5.0,)` binds the new value)
            preferred = expr.id if isinstance(expr, gast.Name) else f"{param}_default"
            return gast.Name(id=ref(value, preferred), ctx=gast.Load(), annotation=None, type_comment=None)

        if len(values) == len(args.defaults):
            args.defaults = [bound(e, p.id, v)
                             for e, p, v in zip(args.defaults, positional, values, strict=True)]
        args.kw_defaults = [
            e if e is None or a.id not in kw_values else bound(e, a.id, kw_values[a.id])
            for e, a in zip(args.kw_defaults, args.kwonlyargs, strict=True)
        ]
        return args

    def free_names(self) -> dict[str, Any]:
        """The non-local names the function's source reads, with what they denote (globals, closure
        values, builtins): generated code must not give these names to other objects."""
        out: dict[str, Any] = {}
        for n in gast.walk(self.node):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load) and n.id not in out:
                obj = self.resolve(n.id)
                if obj is not LOCAL and obj is not UNBOUND:
                    out[n.id] = obj
        return out

    def resolve(self, name: str) -> Any:
        """What `name` means inside the function: LOCAL, a closure value, a global, a builtin, or UNBOUND."""
        if name in self.locals:
            return LOCAL
        if name in self.closure:
            try:
                value = self.closure[name].cell_contents
            except ValueError:
                return UNBOUND
            record(self.closure[name], "", value)
            return value
        if name in self.globals:
            value = self.globals[name]
            record(self.globals, name, value)
            return value
        b = self.globals.get("__builtins__", builtins)
        b = b if isinstance(b, dict) else vars(b)
        if name in b:
            return b[name]
        return UNBOUND


def _source_of(fn: Any) -> tuple[str, str, int]:
    try:
        # the code object's own lines: inspect follows a decorator's __wrapped__ from the function, which
        # would give the undecorated source with the wrapper's globals
        lines, start = inspect.getsourcelines(fn.__code__)
    except (OSError, TypeError) as exc:
        raise TransformError(
            f"cannot read the source of {getattr(fn, '__qualname__', fn)!r} ({exc})",
            hint="srcgrad transforms functions defined in a file (or a notebook cell); for a lambda typed "
            "at a prompt or a builtin, use the eager runtime (srcgrad.Tensor with requires_grad).",
        ) from None
    filename = inspect.getsourcefile(fn.__code__) or fn.__code__.co_filename
    return "".join(lines), filename, start


class _PerCode:
    """What was read for a code object (its source text, a lambda's position), kept while the code object
    lives: keyed by identity, with a weak reference, so the code of a transform (generated code read
    back by forward mode) is not kept alive here, nor its generated source in linecache
    (`codegen._keep_source`)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Any, Any]] = {}

    def get(self, code: types.CodeType) -> Any:
        entry = self._entries.get(id(code))
        if entry is None or entry[0]() is not code:
            return None
        return entry[1]

    def __setitem__(self, code: types.CodeType, value: Any) -> None:
        key = id(code)
        entries = self._entries

        def gone(ref: Any) -> None:
            entry = entries.get(key)
            if entry is not None and entry[0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(code, gone), value)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


_PARSE_CACHE = _PerCode()


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _refuse_assembled_transform(fn: types.FunctionType) -> None:
    """A transform srcgrad made whose result is assembled in Python around generated code (jacobian,
    hessian, hvp: basis vectors, reshapes, per-shape variants) rather than being generated code itself
    (grad, value_and_grad, vjp, jvp, which compose): refused by name, saying what composes."""
    kind = getattr(fn, "transform", None)
    if not isinstance(kind, str) or getattr(fn, "__srcgrad_target__", None) is not None \
            or not fn.__code__.co_filename.startswith(_PACKAGE_DIR):
        return
    raise TransformError(
        f"srcgrad does not differentiate sg.{kind}(...) itself yet: its result is assembled around "
        "generated code, not generated code (grad, value_and_grad, vjp and jvp are, and compose)",
        hint="differentiate a composable transform: sg.jacobian(sg.grad(f)) or sg.hessian(f) for second "
        "derivatives, sg.jvp(sg.grad(f)) for Hessian-vector products, and for third derivatives "
        "sg.jacobian(sg.grad(g)) with g = lambda x: sg.jvp(sg.grad(f))(x, v)[1] @ v or "
        "sg.grad(sg.grad(...)) of scalar functions.",
    )


def parse_function(fn: Any) -> FunctionInfo:
    """Parse `fn`'s source into a FunctionInfo. Lambdas and methods are unwrapped to their function."""
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    outputs = getattr(fn, "__srcgrad_outputs__", None)
    if outputs is not None:
        # a function read as returning tuples where it returns dict literals (srcgrad/outputs.py)
        original, pair = outputs
        info = parse_function(original)
        rewrite_returns(info, pair)
        return info
    flat = getattr(fn, "__srcgrad_flat__", None)
    if flat is not None:
        # a function's flat variant (srcgrad/flatten.py): its body, reading the structured arguments'
        # leaves
        info = parse_function(flat[0])
        flatten_parameters(info, fn, parse_function)
        info.locals = assigned_names(info.node)
        return info
    if not isinstance(fn, types.FunctionType):
        raise TransformError(
            f"srcgrad can only transform Python functions, not {type(fn).__name__}",
            hint="pass a function defined with `def`.",
        )
    _refuse_assembled_transform(fn)
    inner = getattr(fn, "__wrapped__", None)
    if isinstance(inner, types.FunctionType) and _passes_through(fn, inner):
        return parse_function(inner)  # a decorator that only forwards the call (logging, timing)
    code = fn.__code__
    # defaults are part of what a build specializes to (a call that omits them runs a variant keyed on
    # their types; keyword-only ones are written into the generated signature): a build is valid while
    # the function holds the same defaults (`f.__defaults__ = (5.0,)` rebuilds, as a rebound helper does)
    if fn.__defaults__ is not None or fn.__kwdefaults__ is not None:
        for deps in _RECORDING:  # (defaults given later change no call that passes every argument)
            deps.add_defaults(fn)
    if code.co_name == "<lambda>":
        return _parse_lambda(fn)
    cached = _PARSE_CACHE.get(code)
    if cached is None:
        src, filename, start = _source_of(fn)
        text = textwrap.dedent(src)
        try:
            module = gast.parse(text)
        except SyntaxError as exc:
            raise TransformError(
                f"cannot parse the source of {fn.__qualname__}: {exc}", filename=filename, lineno=start
            ) from None
        node = module.body[0]
        if isinstance(node, gast.Expr) and isinstance(node.value, gast.Lambda):
            raise TransformError(
                "srcgrad cannot transform a lambda",
                filename=filename,
                lineno=start,
                hint="define the function with `def`.",
            )
        if not isinstance(node, gast.FunctionDef):
            # getsource of a lambda assigned in a statement gives the whole statement
            raise TransformError(
                f"cannot find the definition of {fn.__qualname__}",
                filename=filename,
                lineno=start,
                hint="define the function with `def` at module level or inside another function.",
            )
        cached = (text, filename, start)
        _PARSE_CACHE[code] = cached
    text, filename, start = cached
    module = gast.parse(text)
    node = module.body[0]
    node.decorator_list = []
    node.returns = None
    _unstar_assignments(node)
    closure = {}
    if fn.__closure__:
        closure = dict(zip(code.co_freevars, fn.__closure__, strict=False))
    info = FunctionInfo(
        fn=fn,
        node=node,
        filename=filename,
        line_offset=start - 1,
        lines=text.splitlines(),
        globals=fn.__globals__,
        closure=closure,
    )
    lower(info, parse_function)
    localize_dicts(info, parse_function)
    info.locals = assigned_names(node)
    return info


def _parse_lambda(fn: types.FunctionType) -> FunctionInfo:
    """A lambda, as the function `def lambda_<line>(<its parameters>): return <its body>`. Its source is
    found in its file (a script, a module, a notebook cell: whatever linecache holds) by the position of
    its body, so several lambdas on one line, or one spanning lines inside a call, are told apart."""
    code = fn.__code__
    filename = code.co_filename
    lines = linecache.getlines(filename)
    if not lines:
        raise TransformError(
            f"cannot read the source of this lambda ({filename}, line {code.co_firstlineno})",
            hint="srcgrad transforms functions defined in a file (or a notebook cell); for a lambda typed "
            "at a prompt or made by exec, define it with `def` in a file, or use the eager runtime.",
        )
    found = _PARSE_CACHE.get(code)
    text = "".join(lines)
    if found is None:
        try:
            module = gast.parse(text)
        except SyntaxError as exc:
            raise TransformError(f"cannot parse {filename}: {exc}", filename=filename,
                                 lineno=code.co_firstlineno) from None
        candidates = [n for n in gast.walk(module) if isinstance(n, gast.Lambda)
                      and getattr(n, "lineno", None) == code.co_firstlineno]
        params = [a.id for a in candidates[0].args.args] if len(candidates) == 1 else None
        if len(candidates) > 1:
            pos = _body_position(code)
            candidates = [n for n in candidates
                          if (n.body.lineno, n.body.col_offset) == pos
                          and [a.id for a in n.args.args] == list(code.co_varnames[:code.co_argcount])]
            params = [a.id for a in candidates[0].args.args] if len(candidates) == 1 else None
        if params is None:
            raise TransformError(
                f"cannot find this lambda in {filename}, line {code.co_firstlineno}",
                filename=filename, lineno=code.co_firstlineno,
                hint="define the function with `def`.")
        found = (candidates[0].lineno, candidates[0].col_offset)
        _PARSE_CACHE[code] = found
    module = gast.parse(text)
    lam = next(n for n in gast.walk(module) if isinstance(n, gast.Lambda)
               and (n.lineno, n.col_offset) == found)
    ret = gast.Return(value=lam.body)
    gast.copy_location(ret, lam.body)
    node = gast.FunctionDef(name=f"lambda_{code.co_firstlineno}", args=lam.args, body=[ret],
                            decorator_list=[], returns=None, type_comment=None, type_params=[])
    gast.copy_location(node, lam)
    closure = dict(zip(code.co_freevars, fn.__closure__, strict=False)) if fn.__closure__ else {}
    info = FunctionInfo(fn=fn, node=node, filename=filename, line_offset=0, lines=text.splitlines(),
                        globals=fn.__globals__, closure=closure)
    lower(info, parse_function)
    localize_dicts(info, parse_function)
    info.locals = assigned_names(node)
    return info


def _body_position(code: types.CodeType) -> tuple[int, int] | None:
    """Where a lambda's body starts: its code's earliest instruction position after the header's."""
    spots = [(line, col) for line, _, col, _ in code.co_positions()
             if line is not None and col is not None and (line, col) != (code.co_firstlineno, 0)]
    return min(spots) if spots else None


def signature_of(fn: Any) -> inspect.Signature:
    """The signature calls of `fn` bind to: its own (a decorator's wrapper with named parameters and
    defaults of its own is not the function it wraps, whatever `__wrapped__` says), except for a srcgrad
    transform or a wrapper taking only `*args, **kwargs`, whose calls bind to the wrapped function's."""
    own = inspect.signature(fn, follow_wrapped=False)
    forwards = all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in own.parameters.values())
    if getattr(fn, "__srcgrad_target__", None) is not None or (forwards and own.parameters):
        return inspect.signature(fn)
    return own


def _passes_through(wrapper: types.FunctionType, inner: types.FunctionType) -> bool:
    """Whether a decorator's wrapper returns exactly what the wrapped function returns, called with the
    wrapper's own arguments (`return f(*args, **kwargs)`, or `out = f(*args, **kwargs)` ... `return out`
    with `out` never changed): then differentiating the wrapper is differentiating `inner`. Any other
    wrapper (one that scales, clips or adds to the value) is transformed as code."""
    try:
        src, _, _ = _source_of(wrapper)
        node = gast.parse(textwrap.dedent(src)).body[0]
    except (TransformError, SyntaxError, IndexError):
        return False
    if not isinstance(node, gast.FunctionDef):
        return False
    a = node.args
    names = [p.id for p in a.posonlyargs + a.args]
    if (wrapper.__defaults__ or wrapper.__kwdefaults__) and (
            wrapper.__defaults__ != inner.__defaults__ or wrapper.__kwdefaults__ != inner.__kwdefaults__
            or names != list(inner.__code__.co_varnames[:inner.__code__.co_argcount])):
        return False  # `def w(x, s=2.0): return f(x, s)`: w's default is not f's, so w is not f
    star = a.vararg.id if a.vararg is not None else None
    kw = a.kwarg.id if a.kwarg is not None else None
    closure = dict(zip(wrapper.__code__.co_freevars, wrapper.__closure__ or (), strict=False))

    def is_forward_call(e: Any) -> bool:
        if not (isinstance(e, gast.Call) and isinstance(e.func, gast.Name)):
            return False
        cell = closure.get(e.func.id)
        target = cell.cell_contents if cell is not None else wrapper.__globals__.get(e.func.id)
        if target is not inner:
            return False
        args = [x.value.id if isinstance(x, gast.Starred) and isinstance(x.value, gast.Name) else
                x.id if isinstance(x, gast.Name) else None for x in e.args]
        want = names + ([star] if star else [])
        kws = [(k.arg, k.value.id if isinstance(k.value, gast.Name) else None) for k in e.keywords]
        return args == want and kws == ([(None, kw)] if kw else [])

    returns = [n for n in gast.walk(node) if isinstance(n, gast.Return)]
    stores: dict[str, list] = {}
    for n in gast.walk(node):
        if isinstance(n, gast.Name) and isinstance(n.ctx, (gast.Store, gast.Del)):
            stores.setdefault(n.id, []).append(n)
    forwarded = {t.id for n in gast.walk(node) if isinstance(n, gast.Assign) and len(n.targets) == 1
                 and isinstance(n.targets[0], gast.Name) and is_forward_call(n.value)
                 for t in n.targets}
    if not returns:
        return False
    for r in returns:
        v = r.value
        if is_forward_call(v):
            continue
        if isinstance(v, gast.Name) and v.id in forwarded and len(stores.get(v.id, ())) == 1:
            continue
        return False
    # nothing may write into the result before it is returned (out[0] = 0, out *= 2 rebinds: a store),
    # nor change the arguments before they are forwarded (x *= 2.0, x = x * 2)
    if any(p in stores for p in names + [star, kw] if p):
        return False
    return not any(isinstance(n, (gast.Subscript, gast.Attribute)) and isinstance(n.ctx, gast.Store)
                   for n in gast.walk(node))


def assigned_names(node: gast.FunctionDef) -> set[str]:
    """Every name the function binds locally: parameters, assignment and loop targets."""
    out: set[str] = set()
    a = node.args
    for arg in a.posonlyargs + a.args + a.kwonlyargs:
        out.add(arg.id)
    for arg in (a.vararg, a.kwarg):
        if arg is not None:
            out.add(arg.id)
    for n in gast.walk(node):
        if isinstance(n, gast.Name) and isinstance(n.ctx, (gast.Store, gast.Del, gast.Param)):
            out.add(n.id)
    return out


# ------------------------------------------------------------------------------------------- the fence
_REJECT = {
    gast.Yield: ("a generator (yield)", "return a value (or build a list and return it)."),
    gast.YieldFrom: ("a generator (yield from)", "return a value."),
    gast.Await: ("async code (await)", "differentiate a synchronous function."),
    gast.AsyncFunctionDef: ("an async function", "differentiate a synchronous function."),
    gast.AsyncFor: ("async for", "use a plain for loop."),
    gast.AsyncWith: ("async with", "move the context manager outside the differentiated function."),
    gast.Try: ("try/except", "move the error handling outside the differentiated function."),
    gast.With: ("a with statement", "move the context manager outside the differentiated function."),
    gast.Global: ("a global statement", "return the value instead of writing a global."),
    gast.Nonlocal: ("a nonlocal statement", "return the value instead of writing an enclosing variable."),
    gast.Delete: ("del", "leave the variable in place (or assign a new value)."),
    gast.ClassDef: ("a class definition", "define the class outside the differentiated function."),
    gast.FunctionDef: (
        "a nested function used other than by calling it (passed to another function, stored, "
        "recursive, decorated, with *args, or returning from inside a loop)",
        "call it directly (srcgrad inlines a nested function at each call), or define it at module level.",
    ),
    gast.NamedExpr: ("an assignment expression (:=)", "assign on its own line first."),
    gast.Match: ("a match statement", "use if/elif/else."),
    gast.Import: ("an import inside the function", "import at module level."),
    gast.ImportFrom: ("an import inside the function", "import at module level."),
}


# Expressions the compiler cannot differentiate *through*; fine where no differentiated value flows
# (e.g. a comprehension over a shape). The normalizer rejects them in statements that carry derivatives.
EXPR_REJECT = {
    gast.Lambda: ("a lambda passed as a value", "bind it to a name and call it (srcgrad inlines the call), "
                  "or define the helper with `def` at module level and call it."),
    gast.ListComp: ("a list comprehension", "write a for loop that appends to a list, then np.stack it."),
    gast.SetComp: ("a set comprehension", "write a for loop."),
    gast.DictComp: ("a dict comprehension", "write a for loop."),
    gast.GeneratorExp: ("a generator expression", "write a for loop."),
    gast.Starred: ("starred arguments (*args)", "pass the arguments one by one."),
}


def fence(info: FunctionInfo) -> None:
    """Reject, at transform time, every construct the compiler does not differentiate."""
    root = info.node
    a = root.args
    if a.vararg is not None or a.kwarg is not None:
        inner = getattr(info.fn, "__wrapped__", None)
        if inner is not None:
            raise located(
                info,
                root,
                f"{getattr(inner, '__name__', 'the function')} is decorated by {info.name}, whose wrapper "
                "takes *args or **kwargs and may change the value (it does more than return the "
                "wrapped call); srcgrad does not differentiate through *args yet",
                f"name the wrapper's parameters (def {info.name}(x, ...)), or differentiate "
                f"{getattr(inner, '__name__', 'f')}.__wrapped__ if the decorator does not change the value.",
            )
        raise located(
            info,
            root,
            f"{info.name} takes *args or **kwargs, which srcgrad does not differentiate through",
            "name each parameter.",
        )
    for n in gast.walk(root):
        if n is root:
            continue
        kind = _REJECT.get(type(n))
        if kind is not None:
            raise located(info, n, f"srcgrad cannot differentiate {kind[0]}", kind[1])
        if isinstance(n, (gast.For, gast.While)) and n.orelse:
            raise located(
                info,
                n,
                "srcgrad cannot differentiate a loop with an else clause",
                "set a flag before `break` and test it after the loop.",
            )
        if isinstance(n, (gast.Assign, gast.AugAssign, gast.AnnAssign)):
            targets = n.targets if isinstance(n, gast.Assign) else [n.target]
            for t in targets:
                for sub in gast.walk(t):
                    if isinstance(sub, gast.Attribute) and isinstance(sub.ctx, gast.Store):
                        raise located(
                            info,
                            n,
                            "srcgrad cannot differentiate a write to an attribute",
                            "keep the value in a local variable and return it.",
                        )
                    if isinstance(sub, gast.Starred):
                        raise located(
                            info,
                            n,
                            "srcgrad cannot differentiate starred unpacking",
                            "unpack each element by position.",
                        )
        if isinstance(n, gast.Assign) and len(n.targets) > 1:
            raise located(
                info,
                n,
                "srcgrad does not support chained assignment (a = b = ...)",
                "assign each name on its own line.",
            )


def _unstar_assignments(root: gast.FunctionDef) -> None:
    """`first, *rest, last = seq` as the assignments it makes: `first = seq[0]`, `rest = seq[1:-1]`,
    `last = seq[-1]` (seq evaluated once, into a name), or, for a list or tuple written there, each item
    bound directly and the starred name a list of the rest. `rest` is then a slice of seq (an array's
    slice where seq is an array, which indexes, sums and stacks as Python's list of its rows does)."""
    counter = [0]

    def unstar(s: Any) -> list:
        if not (isinstance(s, gast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], (gast.Tuple, gast.List))):
            return [s]
        elts = s.targets[0].elts
        stars = [k for k, t in enumerate(elts) if isinstance(t, gast.Starred)]
        if len(stars) != 1 or any(isinstance(n, gast.Starred) for t in elts
                                  if not isinstance(t, gast.Starred) for n in gast.walk(t)):
            return [s]
        k = stars[0]
        after = len(elts) - k - 1
        out: list = []

        def bind(target: Any, value: Any) -> None:
            out.append(gast.copy_location(gast.Assign(targets=[target], value=value, type_comment=None), s))

        if isinstance(s.value, (gast.Tuple, gast.List)) and not any(
                isinstance(v, gast.Starred) for v in s.value.elts) and len(s.value.elts) >= len(elts) - 1:
            items = s.value.elts
            for j in range(k):
                bind(elts[j], items[j])
            bind(elts[k].value, gast.List(elts=items[k:len(items) - after], ctx=gast.Load()))
            for j in range(after):
                bind(elts[k + 1 + j], items[len(items) - after + j])
            return out
        counter[0] += 1
        seq = f"_unpacked{counter[0]}"
        bind(gast.Name(id=seq, ctx=gast.Store(), annotation=None, type_comment=None), s.value)
        need = len(elts) - 1  # Python's own error where seq is too short (the slices would not say)
        check = gast.parse(f"if len({seq}) < {need}:\n    raise ValueError('not enough values to unpack "
                           f"(expected at least {need}, got ' + str(len({seq})) + ')')\n").body[0]
        for n in gast.walk(check):
            if isinstance(n, (gast.stmt, gast.expr)):
                gast.copy_location(n, s)
        out.append(check)

        def item(index: Any) -> gast.expr:
            held = gast.Name(id=seq, ctx=gast.Load(), annotation=None, type_comment=None)
            return gast.Subscript(value=held, slice=index, ctx=gast.Load())

        for j in range(k):
            bind(elts[j], item(gast.Constant(value=j, kind=None)))
        upper = gast.Constant(value=-after, kind=None) if after else None
        bind(elts[k].value, item(gast.Slice(lower=gast.Constant(value=k, kind=None) if k else None,
                                            upper=upper, step=None)))
        for j in range(after):
            bind(elts[k + 1 + j], item(gast.Constant(value=j - after, kind=None)))
        return out

    def block(stmts: list) -> list:
        out: list = []
        for st in stmts:
            for field_ in ("body", "orelse", "finalbody"):
                if isinstance(getattr(st, field_, None), list):
                    setattr(st, field_, block(getattr(st, field_)))
            out.extend(unstar(st))
        return out

    root.body = block(root.body)


def source_lines_cache(filename: str, text: str) -> None:
    """Register generated source with linecache so inspect and tracebacks can show it."""
    lines = text.splitlines(keepends=True)
    linecache.cache[filename] = (len(text), None, lines, filename)
