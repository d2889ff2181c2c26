"""The Namer: deterministic, readable names for everything the compiler adds to a function.

Adjoints are `b` + the variable (`bx`, `b_t1`), temporaries `_t1, _t2, ...`, control records `_c1` (a branch
decision), `_n1` (a trip count), `_r1` (a range), the stack `_stack`. Globals the generated code needs
(primitives, rule helpers, the user's own functions and data) get their natural name unless that name is
taken by a local variable or by a different object, in which case a numeric suffix is added. No random or
hex names: the same function always gives the same text, so golden files can pin it.
"""

from __future__ import annotations

from typing import Any


class Namer:
    def __init__(self, taken: set[str]):
        self.taken: set[str] = set(taken)  # every local name in use in the generated function
        self.globals: dict[str, Any] = {}  # global name -> object, for the generated module
        self._by_id: dict[int, str] = {}
        self._counters: dict[str, int] = {}
        self._adjoints: dict[str, str] = {}
        self.temps: set[str] = set()  # the `_tN` temporaries handed out (a user's own `_t1` is not one)
        # names the source itself reads from its globals: never bound to another object here
        self.reserved: dict[str, Any] = {}

    def fresh(self, prefix: str) -> str:
        """`_t1`, `_t2`, ... (never a name in use)."""
        while True:
            n = self._counters.get(prefix, 0) + 1
            self._counters[prefix] = n
            name = f"{prefix}{n}"
            if name not in self.taken and name not in self.globals:
                self.taken.add(name)
                if prefix == "_t":
                    self.temps.add(name)
                return name

    def temp(self) -> str:
        return self.fresh("_t")

    def unique(self, base: str) -> str:
        """`base` itself if free, else base_1, base_2, ..."""
        name, k = base, 0
        while name in self.taken or name in self.globals:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def adjoint(self, var: str) -> str:
        """The adjoint of `var`: bx for x, b_t1 for _t1."""
        name = self._adjoints.get(var)
        if name is None:
            name = self.unique("b" + var)
            self._adjoints[var] = name
        return name

    def is_adjoint(self, name: str) -> bool:
        return name in self._adjoints.values()

    def ref(self, obj: Any, preferred: str, key: Any = None) -> str:
        """A global name bound to `obj` in the generated code's namespace. Objects share a name by
        identity; `key` names a binding instead (a module's data, read again on every call: two globals
        that hold the same number object now must not share one name)."""
        key = id(obj) if key is None else key
        name = self._by_id.get(key)
        if name is not None and self.globals.get(name) is obj:
            return name
        name, k = preferred, 0
        while name in self.taken or (name in self.globals and self.globals[name] is not obj) or (
            name in self.reserved and self.reserved[name] is not obj
        ):
            k += 1
            name = f"{preferred}_{k}"
        self.globals[name] = obj
        self._by_id[key] = name
        return name

    def lookup(self, name: str) -> Any:
        """The object a global reference name is bound to (KeyError if it is no reference)."""
        return self.globals[name]
