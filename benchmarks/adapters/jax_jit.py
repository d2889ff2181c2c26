"""JAX with jit: the derivative compiled ahead of time by XLA in `prepare` (not timed).

Workloads with a Python loop of thousands of steps use their `jax_fn` (lax.scan / fori_loop), as a JAX
user would write them; a `while` whose trip count depends on array values cannot be traced, so those
workloads are unsupported here rather than errors.
"""

from __future__ import annotations

from benchmarks.adapters.base import Prepared, Unsupported
from benchmarks.adapters.jax import Jax, call_args, derivative, import_jax
from benchmarks.workloads import Workload, rebind


class JaxJit(Jax):
    """JAX with jax.jit: the same availability check as the `jax` adapter, compiled derivatives."""

    name = "jax-jit"

    def prepare(self, workload: Workload) -> Prepared:
        if workload.data_dependent:
            raise Unsupported("data-dependent while: jit cannot reverse-differentiate it")
        jax = import_jax()
        import jax.numpy as jnp

        fn = rebind(workload.jax_fn or workload.fn, np=jnp)
        args = call_args(jax, workload)
        compiled = jax.jit(derivative(jax, fn, workload)).lower(*args).compile()  # ahead of time
        return lambda: jax.block_until_ready(compiled(*args))


ADAPTER = JaxJit()
