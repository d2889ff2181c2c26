"""JAX without jit: the workload's own NumPy source with `np` rebound to jax.numpy, run op by op.

float64 throughout (`jax_enable_x64`), like every other engine here.
"""

from __future__ import annotations

from typing import Any, Callable

from benchmarks.adapters.base import Adapter, Prepared
from benchmarks.workloads import Workload, rebind


def import_jax() -> Any:
    """Import jax with float64 enabled; raises ImportError when it is missing."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def derivative(jax: Any, fn: Callable[..., Any], workload: Workload) -> Callable[..., Any]:
    """The function of the workload's arguments (and v) that returns what the workload asks for."""
    if workload.kind == "grad":
        return jax.grad(fn, argnums=workload.wrt)
    if workload.kind == "vjp":
        def vjp(*args_and_v: Any) -> Any:
            *args, v = args_and_v
            _, pullback = jax.vjp(fn, *args)
            return pullback(v)[0]

        return vjp
    if workload.kind == "hvp":
        def hvp(x: Any, v: Any) -> Any:  # forward over reverse
            return jax.jvp(jax.grad(fn), (x,), (v,))[1]

        return hvp
    return jax.hessian(fn)


def call_args(jax: Any, workload: Workload) -> list[Any]:
    """The workload's arguments as JAX arrays (Python floats stay floats), then v where it has one."""
    import jax.numpy as jnp

    args = [a if isinstance(a, float) else jnp.asarray(a) for a in workload.args]
    if workload.v is not None:
        args.append(jnp.asarray(workload.v))
    return args


class Jax(Adapter):
    name = "jax"

    def available(self) -> bool:
        try:
            jax = import_jax()
        except ImportError as exc:
            self.reason = f"not installed ({exc.name or exc}; the bench extra)"
            return False
        self.version = jax.__version__
        return True

    def prepare(self, workload: Workload) -> Prepared:
        jax = import_jax()
        import jax.numpy as jnp

        d = derivative(jax, rebind(workload.fn, np=jnp), workload)
        args = call_args(jax, workload)
        return lambda: jax.block_until_ready(d(*args))


ADAPTER = Jax()
