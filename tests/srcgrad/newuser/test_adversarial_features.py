"""Adversarial programs aimed at srcgrad's newest features, checked against central finite differences.

Dicts a function builds, objects made to hold state, in-place writes into arrays (copies, buffers, rows
past views, aliases), loops whose saved values are batched, builtin max/min, the stack family of tuple
literals, np.interp with left=/right=, decorators with parameters of their own, and dict outputs under
jvp/vjp/jacobian/has_aux. Each check compares grad (twice) with central differences, jvp with the
directional difference, vjp with the finite-difference Jacobian, and makes sure the caller's arrays are
untouched. Programs that expose srcgrad bugs are strict xfails with a one-line reason."""

import functools
from dataclasses import dataclass

import numpy as np
import pytest

import srcgrad as sg

from .harness import (
    assert_unchanged,
    check,
    check_jvp,
    check_vjp,
    fd_leaf,
    normal_sampler,
    random_like,
    snapshot,
)

rn = normal_sampler(21)


def check_all(f, *args, argnums=0):
    check_vjp(f, *args, argnums=argnums)
    check_jvp(f, *args, argnums=argnums)


def refused(f, *args, match, argnums=0):
    """f must be refused by grad and by jvp with a TransformError matching `match`; args untouched."""
    before = snapshot(args)
    with pytest.raises(sg.TransformError, match=match):
        sg.grad(f, argnums=argnums)(*args)
    assert_unchanged(before, args)
    rng = np.random.default_rng(1)
    t = random_like(args[argnums], rng)
    with pytest.raises(sg.TransformError, match=match):
        sg.jvp(f, argnums=argnums)(*args, t)
    assert_unchanged(before, args)


# ----------------------------------------------------------------------------------------------------
# 1. dicts built inside the function


def dict_rebound_in_loop(x):
    d = {"a": x[0], "b": x[1]}
    for _ in range(5):
        d = {"a": 0.9 * d["a"] + 0.1 * d["b"], "b": np.sin(d["a"]) + d["b"] * x[2]}
    return d["a"] ** 2 + d["b"]


def test_dict_literal_rebound_in_a_loop_same_keys():
    check(dict_rebound_in_loop, rn(3))


def dict_built_key_by_key(x):
    d = {}
    d["mu"] = np.mean(x)
    d["c"] = x - d["mu"]
    d["var"] = np.mean(d["c"] ** 2)
    d["skew"] = np.mean(d["c"] ** 3) / d["var"] ** 1.5
    return d["skew"] + 0.5 * d["var"]


def test_empty_dict_then_keys_set_one_by_one():
    check(dict_built_key_by_key, rn(6))


def dict_items_weighted(x):
    w = {"lo": 0.5, "hi": 2.0, "mid": -1.0}
    parts = {"lo": np.sum(x[:2]), "hi": np.sum(x[2:] ** 2), "mid": np.prod(x[1:3])}
    total = 0.0
    for k, v in parts.items():
        total = total + w[k] * v
    return total


def test_dict_items_loop_reads_another_dict_by_the_loop_key():
    check(dict_items_weighted, rn(5))


def dict_values_sum(x):
    terms = {"quad": x @ x, "lin": np.sum(3.0 * x), "cub": np.sum(x ** 3)}
    s = 0.0
    for v in terms.values():
        s = s + v * v
    return s + sum(terms.values())


def test_dict_values_loop_and_sum_of_values():
    check(dict_values_sum, rn(4))


def leapfrog_dict(s, h):
    p_half = s["p"] - 0.5 * h * np.sin(s["q"])
    q = s["q"] + h * p_half
    return {"q": q, "p": p_half - 0.5 * h * np.sin(q)}


def pendulum_dict(q0, p0):
    s = {"q": q0, "p": p0}
    for _ in range(8):
        s = leapfrog_dict(s, 0.2)
    return s["q"] * s["p"] + s["q"] ** 2


def test_dict_state_passed_to_a_helper_returning_a_dict():
    check(pendulum_dict, 0.7, 0.3, argnums=(0, 1))


def moments_dict(x):
    d = {}
    d["mean"] = np.mean(x)
    d["spread"] = np.sum((x - d["mean"]) ** 2)
    return d


def moments_used(x):
    m = moments_dict(x)
    return m["spread"] * m["mean"] + sum(m.values())


def moments_forwarded(x):
    m = moments_dict(x * 2.0)
    return m


def test_helper_returning_a_dict_it_filled_key_by_key():
    check(moments_used, rn(4))
    # returned on by the caller: jvp and vjp give it as a dict
    check_all(moments_forwarded, rn(4))


def measured(x):
    loss = np.sum(x ** 2)
    return loss, {"l1": np.sum(np.abs(x)), "top": np.max(x)}


def measured_used(x):
    loss, stats = measured(x)
    for _ in range(2):
        loss, stats = measured(x * stats["top"])
    return loss + stats["l1"] * stats["top"]


def test_helper_returning_a_loss_and_a_dict_unpacked_in_a_loop():
    check(measured_used, np.array([0.3, -0.8, 0.6]))


def moments_indexed_at_the_call(x):
    return moments_dict(x)["mean"]


def test_helper_dict_read_at_the_call():
    # the returned dict is unpacked into variables by a statement just before the return
    check(moments_indexed_at_the_call, rn(3))


def dict_branch_rebind(x):
    d = {"s": np.sum(x), "m": np.max(x)}
    if d["s"] > 0:
        d = {"s": d["s"] * 2.0, "m": d["m"] + np.sum(x ** 2)}
    else:
        d = {"s": -d["s"] * d["m"], "m": d["m"] * 3.0}
    return d["s"] * d["m"]


def test_dict_rebound_in_both_branches_positive():
    check(dict_branch_rebind, np.array([0.5, 1.2, -0.3, 0.9]))


def test_dict_rebound_in_both_branches_negative():
    check(dict_branch_rebind, np.array([-0.5, -1.2, 0.3, -0.9]))


def dict_key_augmented_in_loop(x):
    acc = {"s": 0.0, "p": 1.0}
    for i in range(x.shape[0]):
        acc["s"] += x[i] ** 2
        acc["p"] *= 1.0 + 0.1 * x[i]
        if acc["s"] > 2.0:
            acc["s"] -= 0.5 * acc["p"]
    return acc["s"] + acc["p"]


def test_dict_keys_augmented_in_a_loop_with_a_branch():
    check(dict_key_augmented_in_loop, np.array([0.8, -1.1, 0.6, 1.3, -0.7]))


def dict_tuple_values(x):
    d = {"pair": (x[0], x[1]), "rest": x[2:]}
    a, b = d["pair"]
    return a * b + np.sum(d["rest"] * a)


def test_dict_value_is_a_tuple_unpacked():
    check(dict_tuple_values, rn(5))


def dict_nested(x):
    net = {"l1": {"w": x[:2], "b": x[2]}, "l2": {"w": x[3:5], "b": x[5]}}
    h = np.tanh(net["l1"]["w"] * 0.7 + net["l1"]["b"])
    out = np.sum(net["l2"]["w"] * h) + net["l2"]["b"]
    return out ** 2


def test_nested_dict_literal_read_by_two_keys():
    check(dict_nested, rn(6))


def dict_nested_written(x):
    net = {"l1": {"w": x[:2], "b": 0.0}, "acc": 0.0}
    for i in range(3):
        net["l1"]["w"] = net["l1"]["w"] * 0.9 + x[2:4] * i
        net["l1"]["b"] += np.sum(net["l1"]["w"])
        net["acc"] += net["l1"]["b"] ** 2
    net["l1"] = {"w": net["l1"]["w"] * net["acc"], "b": net["l1"]["b"]}
    return np.sum(net["l1"]["w"]) + net["l1"]["b"]


def test_nested_dict_literal_written_by_two_keys_in_a_loop():
    check(dict_nested_written, rn(4))


def dict_nested_new_key_in_loop(x):
    net = {"l1": {"w": x}}
    for i in range(2):
        net["l2"] = {"w": x * i}
    return np.sum(net["l2"]["w"])


def test_nested_dict_given_a_new_key_in_a_loop_of_constant_bounds():
    # range(2) runs at least once: its first pass is written out, and adds the key before the loop
    check(dict_nested_new_key_in_loop, rn(2))


def dict_nested_new_key_in_loop_of_n(x, n):
    net = {"l1": {"w": x}}
    for i in range(n):
        net["l2"] = {"w": x * i}
    return np.sum(net["l2"]["w"])


def test_nested_dict_given_a_new_key_in_a_loop_of_unknown_length_is_refused():
    # range(n) may run no pass, and then net has no "l2": the keys after the loop are not known
    refused(dict_nested_new_key_in_loop_of_n, rn(2), 3, match=r"new key 'l2' added to net inside a loop")


def dict_get(x):
    d = {"a": x[0] * x[1], "b": np.exp(x[2])}
    return d.get("c", 0.5) + d.get("a", 0.0)


def test_dict_get_is_refused_with_advice():
    refused(dict_get, rn(3), match=r"\.get\(\) of a flattened dict")


def dict_len_in(x):
    d = {"a": x[0] * x[1], "b": np.exp(x[2])}
    extra = d["a"] * 0.5
    n = len(d)
    if "b" in d:
        extra = extra + d["b"] * n
    return extra


def test_dict_len_and_in():
    check(dict_len_in, rn(3))


def dict_len_keys(x):
    d = {"a": x * 2.0, "b": x}
    n = 0
    for _ in d:
        n += 1
    return d["a"] * n * len(d) + sum(1.0 for _ in d.keys())


def test_dict_len_and_loop_over_keys():
    check(dict_len_keys, 0.8)


def dict_sgd(params, x):
    for _ in range(3):
        grads = {k: 2.0 * v * x for k, v in params.items()}
        params = {k: params[k] - 0.1 * grads[k] for k in params}
    return np.sum(params["w"] ** 2) + params["b"] ** 2 * x


def test_dict_comprehension_over_a_pytree_argument_rebound_in_a_loop():
    params = {"w": rn(3), "b": 0.4}
    check(dict_sgd, params, 0.7, argnums=0, jvp=False)
    check(dict_sgd, params, 0.7, argnums=1)


def dict_comp_nonlinear(params, x):
    for i in range(4):
        params = {k: np.tanh(v + 0.1 * i * x) for k, v in params.items()}
    return sum(np.sum(v * v) for v in params.values())


def test_dict_comprehension_nonlinear_rebound():
    check(dict_comp_nonlinear, {"a": rn(2), "b": rn(3)}, 0.3, argnums=(0, 1), jvp=False)
    check_jvp(dict_comp_nonlinear, {"a": rn(2), "b": rn(3)}, 0.3, argnums=(0, 1))


def dict_alias_written(x):
    d = {"a": x[0], "b": x[1]}
    e = d
    e["a"] = e["a"] * 3.0
    return d["a"] * d["b"]


def test_dict_alias_written_through_the_other_name_is_refused():
    refused(dict_alias_written, rn(2), match="dict")


def dict_int_keys_by_loop(x):
    d = {0: x[0], 1: x[1], 2: x[2]}
    s = 0.0
    for i in range(3):
        s = s + d[i] * (i + 1.0)
    return s * s


def test_dict_int_keys_read_by_the_index_of_a_loop_of_constant_bounds():
    check(dict_int_keys_by_loop, rn(3))     # the loop written out: d[0], d[1], d[2]


def dict_int_keys_by_loop_of_n(x, n):
    d = {0: x[0], 1: x[1], 2: x[2]}
    s = 0.0
    for i in range(n):
        s = s + d[i] * (i + 1.0)
    return s * s


def test_dict_int_keys_read_by_the_index_of_a_loop_of_unknown_length_is_refused():
    refused(dict_int_keys_by_loop_of_n, rn(3), 3, match="key computed at run time")


def dict_returned(x):
    mu = np.mean(x)
    return {"mean": mu, "centered": x - mu, "energy": np.sum(x ** 2)}


def test_dict_literal_returned_jvp_vjp():
    check_all(dict_returned, rn(4))


def test_dict_literal_returned_jacobian():
    x = rn(4)
    J = sg.jacobian(dict_returned)(x)
    assert isinstance(J, dict) and sorted(J) == ["centered", "energy", "mean"]
    for k in J:
        np.testing.assert_allclose(J[k], fd_leaf(lambda z, k=k: dict_returned(z)[k], x, ()), rtol=1e-5,
                                   atol=1e-7)


def dict_key_order_rebind(x):
    d = {"a": x, "b": 2.0 * x}
    d = {"b": d["a"], "a": d["b"]}
    out = 0.0
    for v in d.values():
        out = out * 10.0 + v
    return out


def test_dict_rebound_with_keys_in_another_order_iterated():
    check(dict_key_order_rebind, 1.0)


def dict_key_order_branch(x):
    d = {"a": x[0], "b": x[1]}
    if x[0] > 0:
        d = {"b": d["b"] * 2.0, "a": d["a"]}
    first = list(d.values())[0]
    return first * 10.0 + list(d.values())[1]


def test_dict_rebound_in_a_branch_with_keys_in_another_order():
    # the order of .values() would depend on the branch taken: refused (it was silently wrong)
    with pytest.raises(sg.TransformError, match="another order"):
        sg.grad(dict_key_order_branch)(np.array([0.5, 0.3]))


def add_into(d, v):
    d["s"] = d["s"] + v


def helper_mutates_dict(x):
    d = {"s": 0.0}
    add_into(d, x ** 2)
    add_into(d, np.sin(x))
    return d["s"]


def test_helper_writing_into_a_local_dict_it_was_given():
    # the write would land in the helper's copy of the leaf: refused (it was silently lost)
    with pytest.raises(sg.TransformError, match="writes into d"):
        sg.grad(helper_mutates_dict)(0.7)


def dict_returned_from_loop(x):
    d = {"u": x, "e": 0.0}
    for _ in range(3):
        d = {"u": np.sin(d["u"]) * 1.1, "e": d["e"] + np.sum(d["u"] ** 2)}
    return d


def test_dict_rebound_in_loop_then_returned_vjp_jvp():
    check_all(dict_returned_from_loop, rn(3))


def dict_built_then_returned(x, y):
    out = {}
    out["p"] = x * y
    out["q"] = np.cos(x) + y
    return out


def test_dict_built_key_by_key_then_returned_two_args():
    check_vjp(dict_built_then_returned, rn(3), 0.6, argnums=0)
    check_jvp(dict_built_then_returned, rn(3), 0.6, argnums=(0, 1))


# ----------------------------------------------------------------------------------------------------
# 2. objects made inside the function to hold state


class Bag:
    pass


def bag_integrator(q0, p0):
    st = Bag()
    st.q = q0
    st.p = p0
    st.t = 0.0
    for _ in range(6):
        st.p = st.p - 0.1 * st.q ** 3
        st.q = st.q + 0.1 * st.p
        st.t += 0.1
    return st.q ** 2 + st.p * st.t


def test_plain_class_without_init_holding_state():
    check(bag_integrator, 0.8, -0.2, argnums=(0, 1))


@dataclass
class State:
    q: object
    p: object


def dataclass_aug(q0, p0):
    st = State(q0, p0)
    for i in range(5):
        st.q += 0.1 * st.p
        st.p -= 0.1 * np.sin(st.q) * (1.0 + 0.1 * i)
    return np.sum(st.q * st.p)


def test_local_dataclass_augmented_attributes():
    check(dataclass_aug, 0.6, -0.4, argnums=(0, 1))
    q0, p0 = rn(3), rn(3)
    g_copy = check(lambda q, p: dataclass_aug(q.copy(), p.copy()), q0, p0, argnums=(0, 1))
    before = snapshot((q0, p0))
    g = sg.grad(dataclass_aug, argnums=(0, 1))(q0, p0)   # NumPy's += would write into q0 and p0
    assert_unchanged(before, (q0, p0))
    np.testing.assert_allclose(g[0], g_copy[0], rtol=1e-12)
    np.testing.assert_allclose(g[1], g_copy[1], rtol=1e-12)


def dataclass_tuple_unpack_branch(q0, p0):
    st = State(q0, p0)
    for _ in range(6):
        st.q, st.p = st.q + 0.2 * st.p, st.p - 0.2 * st.q
        if st.q > 0.5:
            st.p, st.q = st.p * 0.9, st.q - 0.1 * st.p
    return st.q * st.p + st.q


def test_local_dataclass_tuple_unpacking_and_branch():
    check(dataclass_tuple_unpack_branch, 0.9, 0.4, argnums=(0, 1))


class Config:
    h = 0.05
    damping = 0.3


def class_attrs_through_instance(x):
    c = Config()
    c.v = np.zeros_like(x)
    c.x = x
    for _ in range(5):
        c.v = c.v - c.h * (c.x + c.damping * c.v)
        c.x = c.x + c.h * c.v
    return np.sum(c.x ** 2) + c.h * np.sum(c.v)


def test_class_attributes_read_through_the_instance():
    check(class_attrs_through_instance, rn(4))


def kick(st, h):
    st.p = st.p - h * st.q
    return st


def object_passed_to_helper(q0, p0):
    st = State(q0, p0)
    for _ in range(4):
        st = kick(st, 0.3)
        st.q = st.q + 0.3 * st.p
    return st.q * st.p


def test_object_passed_to_helper_and_rebound_is_refused():
    refused(object_passed_to_helper, 0.5, match="State")


def kick_in_place(st, h):
    st.p = st.p - h * st.q


def object_mutated_by_helper(q0, p0):
    st = Bag()
    st.q = q0
    st.p = p0
    for _ in range(3):
        kick_in_place(st, 0.3)
        st.q = st.q + 0.3 * st.p
    return st.q * st.p


def test_object_mutated_by_a_helper_is_refused():
    refused(object_mutated_by_helper, 0.5, 0.8, match="attribute")


def object_alias(x):
    st = State(x[0], x[1])
    other = st
    other.q = other.q * 5.0
    return st.q * st.p


def test_object_alias_written_through_the_other_name_is_refused():
    refused(object_alias, rn(2), match="State")


@dataclass
class Acc:
    total: float = 0.0
    n: int = 0


def dataclass_defaults(x):
    a = Acc()
    for i in range(x.shape[0]):
        if x[i] > 0:
            a.total = a.total + x[i] ** 2
            a.n += 1
        else:
            a.total = a.total - 0.5 * x[i]
    return a.total / max(a.n, 1)


def test_local_dataclass_with_defaults_and_int_counter():
    check(dataclass_defaults, np.array([0.3, -0.7, 1.1, 0.2, -0.4]))


def two_objects(x):
    a = Bag()
    b = Bag()
    a.v = x
    b.v = 2.0 * x
    for _ in range(3):
        a.v, b.v = np.tanh(b.v), a.v * b.v
    return np.sum(a.v + b.v)


def test_two_local_objects_swapping():
    check(two_objects, rn(3))


def object_branch(x):
    st = Bag()
    st.r = np.sum(x)
    if st.r > 0:
        st.r = st.r ** 2
        st.extra = np.prod(x)
    else:
        st.r = -st.r
        st.extra = np.sum(x ** 3)
    return st.r + st.extra


def test_object_attribute_set_in_both_branches():
    check(object_branch, np.array([0.5, 0.6, -0.2]))
    check(object_branch, np.array([-0.5, -0.6, 0.2]))


# ----------------------------------------------------------------------------------------------------
# 3. in-place writes into arrays


def heat_copy(u, k):
    for _ in range(5):
        new = u.copy()
        new[1:-1] = u[1:-1] + k * (u[2:] - 2 * u[1:-1] + u[:-2])
        u = new
    return np.sum(u ** 2)


def test_heat_equation_copy_then_interior_write():
    check(heat_copy, rn(6), 0.2, argnums=(0, 1))


def wave_zeros(u, c):
    n = u.shape[0]
    prev = u.copy()
    for _ in range(4):
        u_next = np.zeros(n)
        u_next[0] = 0.5 * u[1]
        u_next[-1] = u[-2] * c
        u_next[1:-1] = 2 * u[1:-1] - prev[1:-1] + c ** 2 * (u[2:] - 2 * u[1:-1] + u[:-2])
        prev = u
        u = u_next
    return np.sum(u ** 2) + np.sum(prev)


def test_wave_zeros_buffer_written_at_both_ends_and_interior():
    check(wave_zeros, rn(5), 0.4, argnums=(0, 1))


def rows_past_views(x0, w):
    state = np.zeros((5, 3))
    state[0] = x0
    for i in range(4):
        x = state[i]
        state[i + 1] = np.tanh(w * x) + 0.5 * x
    return np.sum(state ** 2)


def test_rows_written_past_views():
    check(rows_past_views, rn(3), 0.7, argnums=(0, 1))


def view_then_overwrite(x):
    state = np.zeros((3, 2))
    state[0] = x
    row = state[0]
    state[0] = 2.0 * row
    return np.sum(row * state[0])


def test_view_then_viewed_row_overwritten_is_refused():
    refused(view_then_overwrite, rn(2), match="names the same array")


def view_then_overwrite_loop(x):
    state = np.zeros((4, 2))
    state[0] = x
    for i in range(3):
        a = state[i]
        state[i + 1] = a * 1.5
        state[i] = a + 1.0
    return np.sum(a * state[2])


def test_view_in_loop_then_its_row_overwritten_is_refused():
    refused(view_then_overwrite_loop, rn(2), match="names the same array")


def alias_then_write(x):
    y = x * 2.0
    z = y
    y[0] = x[1] ** 2
    return np.sum(z * x)


def test_alias_then_write_is_refused():
    refused(alias_then_write, rn(3), match="names the same array")


def plus_eq_shared(x):
    a = x * 1.0
    b = a
    a += x ** 2
    return np.sum(b * x)


def test_plus_equals_on_an_array_another_name_shares():
    x = rn(3)
    refused(plus_eq_shared, x, match="names the same array")


def slice_view_overlap(x):
    u = x ** 2
    v = u[1:3]
    u[2] = 5.0 * x[0]
    return np.sum(v * x[:2])


def test_slice_view_overlapping_a_write_is_refused():
    refused(slice_view_overlap, rn(4), match="names the same array")


def slice_view_disjoint(x):
    u = x ** 2
    v = u[0:2]
    u[3] = 5.0 * x[0]
    return np.sum(v * x[:2]) + np.sum(u)


def test_slice_view_disjoint_from_the_write():
    check(slice_view_disjoint, rn(4))


def reshape_view(x):
    a = x * 1.0
    m = a.reshape(2, 2)
    a[0] = x[3] ** 2
    return np.sum(m[0] * x[:2])


def test_reshape_view_then_base_written():
    x = rn(4)
    refused(reshape_view, x, match="names the same array")


def transpose_view(A):
    B = A * 1.0
    T = B.T
    B[0, 1] = 3.0 * A[1, 0]
    return np.sum(T * A)


def test_transpose_view_then_base_written():
    A = rn(2, 2)
    refused(transpose_view, A, match="names the same array")


def write_into_input(x):
    x[0] = 0.0
    return np.sum(x ** 2)


def test_write_into_the_differentiated_argument_leaves_the_caller_array():
    x = rn(3)
    before = snapshot((x,))
    g = sg.grad(write_into_input)(x)
    assert_unchanged(before, (x,))
    np.testing.assert_allclose(g, fd_leaf(write_into_input, x, ()), rtol=1e-5, atol=1e-7)
    val, tan = sg.jvp(write_into_input)(x, np.ones(3))
    assert_unchanged(before, (x,))
    np.testing.assert_allclose(tan, 2 * np.sum(x[1:]), rtol=1e-12)


def write_into_dict_leaf(x, batch):
    batch["y"][0] = 0.0
    return np.sum((x - batch["y"]) ** 2)


def test_write_into_a_non_differentiated_dict_leaf_is_refused():
    x, batch = rn(3), {"y": rn(3)}
    before = snapshot((x, batch))
    with pytest.raises(sg.TransformError):
        sg.grad(write_into_dict_leaf)(x, batch)
    assert_unchanged(before, (x, batch))
    with pytest.raises(sg.TransformError):
        sg.jvp(write_into_dict_leaf)(x, batch, rn(3))
    assert_unchanged(before, (x, batch))


def write_into_list_leaf(x, data):
    ys = data[0]
    ys[1:] = ys[1:] * 2.0
    return np.sum(x * ys)


def test_write_into_a_non_differentiated_list_leaf_is_refused():
    x, data = rn(3), [rn(3), rn(2)]
    before = snapshot((x, data))
    with pytest.raises(sg.TransformError):
        sg.grad(write_into_list_leaf)(x, data)
    assert_unchanged(before, (x, data))


def write_aug_dict_leaf(x, batch):
    batch["w"] += x
    return np.sum(batch["w"] * x)


def test_augmented_write_into_a_non_differentiated_dict_leaf_is_refused():
    x, batch = rn(3), {"w": rn(3)}
    before = snapshot((x, batch))
    # refused when transformed, at the line, with what to write instead (not a TypeError at run time)
    said = r"(?s)writes into batch\['w'\].*line \d+, in write_aug_dict_leaf.*Instead: compute"
    with pytest.raises(sg.TransformError, match=said):
        sg.grad(write_aug_dict_leaf)(x, batch)
    assert_unchanged(before, (x, batch))


def apply_bc(u):
    u[0] = u[1]
    u[-1] = u[-2]
    return u


def helper_bc(x):
    u = np.sin(x)
    for _ in range(3):
        u = u * 1.1 + 0.1 * np.roll(u, 1)
        u = apply_bc(u)
    return np.sum(u ** 3)


def test_helper_writing_its_argument_assigned_back():
    check(helper_bc, rn(5))


def row_increment_view(x):
    S = np.outer(x, x)
    r = S[1]
    S[2] += r * 0.5
    S[1] *= 2.0
    return np.sum(S) + np.sum(r)


def test_row_augmented_writes_with_a_view_of_one_row():
    x = rn(3)
    refused(row_increment_view, x, match="names the same array")


def dict_holds_alias(x):
    a = x * 2.0
    d = {"k": a}
    a[0] = 5.0 * x[1]
    return np.sum(d["k"] * x)


def obj_holds_alias(x):
    a = x * 2.0
    st = Bag()
    st.a = a
    a[0] = 5.0 * x[1]
    return np.sum(st.a * x)


def tuple_holds_alias(x):
    a = x * 2.0
    t = (a, x)
    a += x ** 2
    return np.sum(t[0] * x)


def dict_leaf_view(x):
    d = {"u": x * 1.0}
    v = d["u"]
    d["u"][1] = 3.0 * x[0]
    return np.sum(v * x)


def obj_aug_view(x):
    st = Bag()
    st.u = x * 1.0
    v = st.u
    st.u += x ** 2
    return np.sum(v * x)


def col_view_row_write(x):
    A = np.outer(x, x)
    c = A[:, 1]
    A[0] = x * 3.0
    return np.sum(c * x)


def ravel_view(x):
    A = np.outer(x, x)
    r = A.ravel()
    A[0, 0] = 7.0 * x[1]
    return np.sum(r * np.arange(9.0))


def full_slice_view(x):
    u = x * 1.0
    v = u[:]
    u[0] = x[1] ** 3
    return np.sum(v * x)


def asarray_view(x):
    u = x * 2.0
    v = np.asarray(u)
    u[0] = 1.0
    return np.sum(v * x)


def rows_list_of_views(x0):
    S = np.zeros((4, 2))
    S[0] = x0
    rows = []
    for i in range(3):
        r = S[i]
        rows.append(r)
        S[i + 1] = np.sin(r) * 2.0
    S[1] = S[1] * 0.0
    return np.sum(np.stack(rows))


@pytest.mark.parametrize("f", [dict_holds_alias, obj_holds_alias, tuple_holds_alias, dict_leaf_view,
                               obj_aug_view, col_view_row_write, ravel_view, full_slice_view,
                               asarray_view, rows_list_of_views],
                         ids=lambda f: f.__name__)
def test_write_while_a_container_or_view_names_the_array_is_refused(f):
    refused(f, rn(3) if f is not rows_list_of_views else rn(2), match="names the same array")


def dict_leaf_write(x):
    d = {"u": np.zeros(3), "c": 2.0}
    d["u"][0] = x[0] * d["c"]
    d["u"][1:] = np.sin(x[1:])
    return np.sum(d["u"] ** 2)


def test_write_into_an_array_held_by_a_local_dict():
    check(dict_leaf_write, rn(3))


def obj_leaf_write(x):
    st = Bag()
    st.u = np.zeros(3)
    st.u[0] = x[0] ** 2
    st.u[1:] = x[1:] * st.u[0]
    st.u += x
    return np.sum(st.u ** 2)


def test_write_into_an_array_held_by_a_local_object():
    check(obj_leaf_write, rn(3))


def shift_overlap(x):
    u = x * 1.0
    u[1:] = u[:-1] * 2.0
    u[:-1] = u[1:]
    return np.sum(u * x)


def test_overlapping_shift_writes():
    check(shift_overlap, rn(4))


def col_view_row_write_disjoint(x):
    A = np.outer(x, x)
    c = A[1:, 1]
    A[0] = x * 3.0
    return np.sum(c * x[1:]) + np.sum(A)


def test_column_view_disjoint_from_the_row_written():
    check(col_view_row_write_disjoint, rn(3))


def swap_then_write(x):
    a = x * 1.0
    b = x ** 2
    a, b = b, a
    a[0] = 0.0
    return np.sum(a * b) + np.sum(x * a)


def test_swap_names_then_write():
    check(swap_then_write, rn(3))


def reverse_self(x):
    u = x ** 2
    u[::-1] = u
    return np.sum(u * np.arange(4.0))


def test_array_written_with_itself_reversed():
    check(reverse_self, np.array([1.0, 2.0, 3.0, 4.0]))


def copy_self(x):
    u = x ** 2
    u[:] = u
    return np.sum(u * np.arange(4.0))


def test_array_written_with_itself_full_slice():
    check(copy_self, np.array([1.0, 2.0, 3.0, 4.0]))


def scatter_in_loop(x, idx):
    out = np.zeros(4)
    for j in range(x.shape[0]):
        out[idx[j]] += x[j] ** 2
    return np.sum(out ** 2)


def test_scatter_with_repeated_integer_indices_in_a_loop():
    check(scatter_in_loop, rn(5), np.array([0, 2, 0, 3, 2]))


def fancy_aug(x):
    out = x * 1.0
    out[[0, 0, 2]] += x[:3] ** 2
    return np.sum(out ** 2)


def test_fancy_index_augmented_write_with_repeated_index():
    check(fancy_aug, rn(4))


# ----------------------------------------------------------------------------------------------------
# 4. loops whose saved values are batched


def lorenz_scalars(x, y, z):
    h = 0.01
    for _ in range(20):
        dx = 10.0 * (y - x)
        dy = x * (28.0 - z) - y
        dz = x * y - 8.0 / 3.0 * z
        x, y, z = x + h * dx, y + h * dy, z + h * dz
    return x * y + z


def test_python_float_loop_several_values_per_iteration():
    check(lorenz_scalars, 1.0, 0.5, 1.2, argnums=(0, 1, 2))


def saved_twice(h0, W):
    h = h0
    for _ in range(4):
        h = np.tanh(W @ h)
        h = h * np.cos(h)
        h = np.tanh(h + h0)
    return np.sum(h ** 2)


def test_value_saved_twice_in_one_iteration():
    check(saved_twice, rn(3), rn(3, 3) * 0.5, argnums=(0, 1))


def cell(h, x, W):
    return np.tanh(W @ h + x)


def nested_loops_helper(xs, W):
    h = np.zeros(3)
    total = 0.0
    for t in range(xs.shape[0]):
        for _ in range(2):
            h = cell(h, xs[t], W)
            total = total + np.sum(h) * 0.5
        h = h * 0.9
    return total + np.sum(h ** 2)


def test_nested_loops_calling_a_helper():
    check(nested_loops_helper, rn(4, 3), rn(3, 3) * 0.5, argnums=(0, 1))


def newton_sqrt(a):
    y = a
    it = 0
    while abs(y * y - a) > 1e-12 and it < 50:
        y = 0.5 * (y + a / y)
        it += 1
    return y


def test_while_loop_data_dependent_newton():
    a = 2.3
    g = sg.grad(newton_sqrt)(a)
    np.testing.assert_allclose(g, 0.5 / np.sqrt(a), rtol=1e-6)
    check(newton_sqrt, a)


def break_continue(x):
    s = 0.0
    p = 1.0
    for i in range(x.shape[0]):
        if x[i] < -0.5:
            continue
        s = s + p * x[i]
        p = p * np.cos(x[i])
        if s > 2.0:
            break
        s = s * 1.05
    return s + p


def test_loop_with_break_and_continue():
    check(break_continue, np.array([0.3, -0.9, 0.7, 0.9, 1.1, 0.4]))


def if_reassigns_test(x):
    y = x
    for _ in range(6):
        if y > 1.0:
            y = y / 2.0 + 0.1 * x
        y = y * 1.7
    return y


def test_if_branch_reassigns_the_tested_variable():
    check(if_reassigns_test, 0.9)


def if_reassigns_array(x):
    y = x
    for _ in range(4):
        if np.sum(y) > 0:
            y = y - 0.3 * np.sum(y ** 2)
        else:
            y = np.sin(y) + 0.2
    return np.sum(y * x)


def test_if_branch_reassigns_the_tested_array():
    check(if_reassigns_array, np.array([0.4, 0.1, 0.3]))


def tuple_rebound(x):
    pair = (x, 1.0)
    for _ in range(5):
        pair = (pair[1] * x, pair[0] + 0.5 * pair[1])
    a, b = pair
    return a * b + pair[0]


def test_tuple_rebound_in_loop_and_read_after():
    check(tuple_rebound, 0.8)


def tuple_of_arrays_rebound(u, v):
    st = (u, v)
    for i in range(3):
        st = (np.tanh(st[0] + st[1]), st[0] * (1.0 + 0.1 * i))
    return np.sum(st[0] * st[1])


def test_tuple_of_arrays_rebound_in_loop():
    check(tuple_of_arrays_rebound, rn(3), rn(3), argnums=(0, 1))


def while_array_norm(x):
    y = x
    n = 0
    while np.linalg.norm(y) < 10.0 and n < 30:
        y = y * 1.3 + 0.1 * np.sin(y)
        n += 1
        if n > 3 and np.max(y) > 4.0:
            break
    return np.sum(y ** 2)


def test_while_array_data_dependent_with_break():
    check(while_array_norm, np.array([0.3, 0.5, -0.2]))


def branch_saves_in_loop(x, w):
    h = x
    acc = 0.0
    for i in range(5):
        z = w * h
        if i % 2 == 0:
            h = np.tanh(z)
            acc = acc + np.sum(h * z)
        else:
            h = np.sin(z) * h
        acc = acc + np.sum(np.exp(-h))
    return acc


def test_loop_with_values_saved_in_branches():
    check(branch_saves_in_loop, rn(3), 0.8, argnums=(0, 1))


def float_and_array_loop(x, a):
    s = a
    y = x
    for _ in range(4):
        y = y * s
        s = s * 0.9 + np.sum(y) * 0.01
        y = np.sin(y) + s
    return np.sum(y) * s


def test_loop_mixing_a_python_float_and_an_array():
    check(float_and_array_loop, rn(3), 1.1, argnums=(0, 1))


def inner_newton(y, a):
    return y - 0.3 * (y ** 3 - a)


def nested_while(a):
    y = 1.0
    k = 0
    while k < 5:
        j = 0
        while abs(y ** 3 - a) > 1e-10 and j < 3:
            y = inner_newton(y, a)
            j += 1
        k += 1
    return y


def test_nested_while_loops_calling_a_helper():
    check(nested_while, 2.0)


def append_stack(x, W):
    h = x
    hs = []
    for t in range(4):
        h = np.tanh(W @ h)
        hs.append(h)
        if t == 1:
            continue
        h = h + 0.1
    return np.sum(np.stack(hs) ** 2)


def test_list_appended_in_a_loop_with_continue_then_stacked():
    check(append_stack, rn(3), rn(3, 3), argnums=(0, 1))


def enum_rows(X, w):
    acc = 0.0
    for i, row in enumerate(X):
        z = row @ w
        if z < -1.0:
            continue
        acc = acc + np.tanh(z) * (i + 1)
        w = w * 0.9 + 0.01 * row
    return acc


def test_enumerate_rows_with_continue_rebinding_a_weight():
    check(enum_rows, rn(5, 3), rn(3), argnums=(0, 1))


def tuple_helper_loop(a, b):
    def step(p, q):
        return q, p + 0.1 * q * q
    for _ in range(5):
        a, b = step(a, b)
    st = (a, b)
    for _ in range(2):
        st = step(*st)
    return st[0] * st[1]


def test_tuple_from_a_nested_helper_rebound_and_starred():
    check(tuple_helper_loop, 0.3, 0.8, argnums=(0, 1))


def if_reassign_nested(x):
    y = x
    for _ in range(5):
        if y > 0.5:
            y = y - 0.4
            if y < 0.3:
                y = y * 3.0
        else:
            y = y + x * 0.2
    return y * y


def test_nested_ifs_reassigning_the_tested_variable():
    check(if_reassign_nested, 0.83)


def while_tuple(x):
    st = (x, 0.0)
    while st[0] < 5.0:
        st = (st[0] * 1.5 + 0.1, st[1] + st[0])
    return st[1]


def test_while_loop_over_a_tuple_rebound():
    check(while_tuple, 0.7)


def saves_twice_floats(x, y):
    for _ in range(4):
        t = x * y
        x = np.sin(t) + x
        t = x + y
        y = np.cos(t) * y
    return x + y


def test_temporary_name_reassigned_twice_per_iteration():
    check(saves_twice_floats, 0.4, 0.7, argnums=(0, 1))


# ----------------------------------------------------------------------------------------------------
# 5. builtin max/min, stack family of tuple literals, np.interp, decorators with parameters


def builtin_max_array(x):
    return max(x ** 2) + min(np.sin(x))


def test_builtin_max_min_of_an_array():
    check(builtin_max_array, np.array([0.3, -1.2, 0.8, 0.5]))


def builtin_max_list(x):
    vals = [x[0] * 2.0, x[1] ** 2, np.sum(x)]
    return max(vals) * min(vals)


def test_builtin_max_min_of_a_list_of_floats():
    check(builtin_max_list, np.array([0.3, 1.2, 0.8]))


def builtin_max_generator(x):
    return max(x[i] * (i + 1.0) for i in range(x.shape[0])) - min(v ** 2 for v in x)


def test_builtin_max_min_of_a_generator():
    check(builtin_max_generator, np.array([0.3, -1.2, 0.8, 0.5]))


def builtin_max_several(a, b):
    c = a * b
    return max(a, b, c) + min(a ** 2, b, 0.3) * max(c, 0.0)


def test_builtin_max_min_of_several_floats():
    check(builtin_max_several, 0.7, 1.3, argnums=(0, 1))


def clip_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = max(s, x[i]) + min(0.1 * x[i], 0.05)
    return s


def test_builtin_max_min_in_a_loop():
    check(clip_loop, np.array([0.3, -1.2, 0.8, 0.5, 1.1]))


def max_star(x):
    vals = (x[0], x[1] ** 2, x[2] * 3.0)
    return max(*vals) - min(*vals)


def max_2d(A):
    return max(np.sum(A, axis=1)) + min(A[0])


def max_listcomp(x, w):
    return max([np.dot(w, x[i]) for i in range(x.shape[0])])


def test_builtin_max_min_starred_of_rows_and_of_a_list_comprehension():
    check(max_star, np.array([0.3, 0.9, -1.4]))
    check(max_2d, rn(3, 2))
    check(max_listcomp, rn(4, 3), rn(3), argnums=(0, 1))


def max_key(x):
    vals = [x[0] - 1.0, x[1] * 0.5, -x[2]]
    return max(vals, key=abs) * 2.0


def test_builtin_max_with_key_is_refused():
    refused(max_key, np.array([0.3, 0.9, -1.4]), match="max")


def stacks(a, b):
    cs = np.column_stack((a, b ** 2))
    ds = np.dstack((a, np.sin(b)))
    hs = np.hstack((a, b * a))
    vs = np.vstack((a, b))
    return np.sum(cs * cs[:, ::-1]) + np.sum(ds ** 3) + np.sum(hs[1:] * hs[:-1]) + np.sum(vs @ vs.T)


def test_stack_family_of_tuple_literals():
    check(stacks, rn(3), rn(3), argnums=(0, 1))


def stacks_2d(A, b):
    return np.sum(np.hstack((A, b[:, None])) ** 2) + np.sum(np.column_stack((b, A[:, 0], b)) * 3.0)


def test_hstack_column_stack_of_2d_and_columns():
    check(stacks_2d, rn(3, 2), rn(3), argnums=(0, 1))


def column_stack_2d_and_1d(A, b):
    return np.sum(np.column_stack((A, b[:2])) ** 2)


def test_column_stack_of_a_matrix_and_a_vector():
    check(column_stack_2d_and_1d, rn(2, 3), rn(3), argnums=(0, 1))


def hstack_floats(x, y):
    return np.sum(np.hstack((x, y, x * y)) ** 2)


def test_hstack_of_floats():
    check(hstack_floats, 0.4, 0.9, argnums=(0, 1))


def column_stack_scalars(x):
    return np.sum(np.column_stack((x[0], x[1] ** 2)) * np.array([1.0, 2.0]))


def test_column_stack_of_scalars():
    check(column_stack_scalars, rn(3))


def stack_loop(x):
    rows = x[None, :]
    for _ in range(3):
        rows = np.vstack((rows, np.tanh(rows[-1])))
    return np.sum(rows * 1.5)


def test_vstack_growing_in_a_loop():
    check(stack_loop, rn(3))


def interp_lr(xq, fp, lo, hi):
    xp = np.array([0.0, 1.0, 2.0, 3.0])
    return np.sum(np.interp(xq, xp, fp, left=lo, right=hi) ** 2)


def test_interp_with_left_and_right_depending_on_arguments():
    xq = np.array([-0.5, 0.3, 1.7, 2.5, 3.8])
    check(interp_lr, xq, rn(4), 0.6, -0.4, argnums=(0, 1, 2, 3))


def interp_lr_kw_expr(x, fp):
    xp = np.linspace(0.0, 1.0, 4)
    return np.sum(np.interp(x, xp, fp, right=fp[0] * 2.0, left=np.sum(fp)) * x)


def test_interp_left_right_as_expressions_of_fp():
    check(interp_lr_kw_expr, np.array([-0.2, 0.4, 0.9, 1.3]), rn(4), argnums=(0, 1))


def interp_only_right(x, fp):
    xp = np.array([0.0, 0.5, 1.0])
    return np.sum(np.interp(x, xp, fp, right=fp[1] * 3.0) ** 2)


def interp_scalar_x(x, lo):
    return np.interp(x, np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0]), left=lo, right=lo * 2.0) * x


def interp_pos(x, fp, lo, hi):
    return np.sum(np.interp(x, np.linspace(0, 1, 3), fp, lo, hi))


def test_interp_right_only_scalar_query_and_positional_left_right():
    check(interp_only_right, np.array([-0.3, 0.2, 0.7, 1.5]), rn(3), argnums=(0, 1))
    check(interp_scalar_x, -0.5, 0.7, argnums=(0, 1))
    check(interp_scalar_x, 1.3, 0.7, argnums=(0, 1))
    check(interp_pos, np.array([-1.0, 0.3, 2.0]), rn(3), 0.2, 0.4, argnums=(1, 2, 3))


def scaled(factor=2.0, shift=0.5):
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(x, power=2):
            return factor * fn(x) ** power + shift
        return wrapper
    return deco


@scaled(factor=3.0)
def base_energy(x):
    return np.sum(np.sin(x))


def use_scaled(x):
    return base_energy(x) + base_energy(x * 2.0, power=3)


def test_decorator_with_named_parameters_and_wrapper_defaults():
    check(use_scaled, rn(3))


def test_decorated_function_given_to_grad_directly():
    check(base_energy, rn(3))


def with_weight(weight=1.0):
    def deco(fn):
        def wrapper(x, scale=weight, *, offset=0.0):
            return scale * fn(x + offset)
        return wrapper
    return deco


@with_weight(weight=0.25)
def cubic(x):
    return np.sum(x ** 3)


def use_with_weight(x):
    return cubic(x) + cubic(x, 2.0) + cubic(x, offset=0.1)


def test_decorator_wrapper_defaults_from_the_decorator_and_keyword_only():
    check(use_with_weight, rn(3))


def deco_twice(scale=1.0, *, extra=0.0):
    def deco(fn):
        def wrapper(x, alpha=0.5):
            return scale * fn(x) + alpha * fn(x * alpha) + extra
        return wrapper
    return deco


@deco_twice(2.0, extra=0.3)
def tanh_sq(x):
    return np.sum(np.tanh(x) ** 2)


def use_tanh_sq(x):
    return tanh_sq(x) + tanh_sq(x, alpha=0.25) + tanh_sq(x, 0.1)


def test_decorator_whose_wrapper_calls_the_function_twice():
    check(use_tanh_sq, rn(3))
    check(tanh_sq, rn(3))


def shifted(k=1.0):
    def d(fn):
        @functools.wraps(fn)
        def w(x, shift=0.0):
            return fn(x + shift) * k
        return w
    return d


def powered(p=2):
    def d(fn):
        @functools.wraps(fn)
        def w(x, temp=1.0):
            return fn(x / temp) ** p
        return w
    return d


@shifted(k=0.5)
@powered(p=3)
def sin_sum(x):
    return np.sum(np.sin(x))


def use_sin_sum(x):
    return sin_sum(x) + sin_sum(x, shift=0.2) + sin_sum(x, 0.1)


def test_two_parameterized_decorators_stacked():
    check(use_sin_sum, rn(3))


def mult_power(mult=2.0):
    def deco(fn):
        def wrapper(x, *args, power=1, **kwargs):
            return mult * fn(x, *args, **kwargs) ** power
        return wrapper
    return deco


@mult_power(mult=3.0)
def lossk(x, w, bias=0.0):
    return np.sum((x * w + bias) ** 2)


def use_lossk(x, w):
    return lossk(x, w) + lossk(x, w, power=2) + lossk(x, w, bias=0.5)


def test_decorator_wrapper_with_args_kwargs_and_a_keyword_of_its_own():
    check(use_lossk, rn(3), rn(3), argnums=(0, 1))


# ----------------------------------------------------------------------------------------------------
# 6. dict outputs under jvp/vjp/jacobian and has_aux


def loss_with_dict_aux(w, X, y):
    r = X @ w - y
    loss = np.mean(r ** 2)
    return loss, {"max_resid": np.max(np.abs(r)), "n": X.shape[0]}


def test_has_aux_dict_aux_grad_and_value_and_grad():
    w, X, y = rn(3), rn(5, 3), rn(5)
    before = snapshot((w, X, y))
    g, aux = sg.grad(loss_with_dict_aux, has_aux=True)(w, X, y)
    assert isinstance(aux, dict) and aux["n"] == 5
    np.testing.assert_allclose(aux["max_resid"], np.max(np.abs(X @ w - y)))
    np.testing.assert_allclose(g, fd_leaf(lambda z: loss_with_dict_aux(z, X, y)[0], w, ()), rtol=1e-5,
                               atol=1e-7)
    (v, aux2), g2 = sg.value_and_grad(loss_with_dict_aux, has_aux=True)(w, X, y)
    np.testing.assert_allclose(g2, g)
    np.testing.assert_allclose(v, loss_with_dict_aux(w, X, y)[0])
    assert aux2["n"] == 5
    assert_unchanged(before, (w, X, y))


def loss_aux_from_loop(x):
    stats = {"steps": 0, "last": 0.0}
    y = x
    for _ in range(3):
        y = np.tanh(y) * 1.2
        stats["steps"] = stats["steps"] + 1
        stats["last"] = np.sum(y)
    return np.sum(y ** 2), stats


def test_has_aux_dict_built_in_a_loop():
    x = rn(3)
    g, aux = sg.grad(loss_aux_from_loop, has_aux=True)(x)
    np.testing.assert_allclose(g, fd_leaf(lambda z: loss_aux_from_loop(z)[0], x, ()), rtol=1e-5, atol=1e-7)
    want = loss_aux_from_loop(x)[1]
    assert aux["steps"] == 3
    np.testing.assert_allclose(aux["last"], want["last"])


def dict_out_two_args(a, b):
    return {"prod": a * b, "ratio": np.sum(a) / (1.0 + b ** 2)}


def test_dict_output_jacobian_two_args():
    a, b = rn(3), 0.7
    J = sg.jacobian(dict_out_two_args, argnums=(0, 1))(a, b)
    for k in ("prod", "ratio"):
        Ja, Jb = J[k]
        np.testing.assert_allclose(Ja, fd_leaf(lambda z, k=k: dict_out_two_args(z, b)[k], a, ()),
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(Jb, fd_leaf(lambda z, k=k: dict_out_two_args(a, z)[k], b, ()),
                                   rtol=1e-5, atol=1e-7)


def test_dict_output_vjp_jvp_two_args():
    check_vjp(dict_out_two_args, rn(3), 0.7, argnums=(0, 1))
    check_jvp(dict_out_two_args, rn(3), 0.7, argnums=(0, 1))


def dict_out_branches(x):
    if np.sum(x) > 0:
        return {"a": x ** 2, "b": np.sum(x)}
    return {"a": np.sin(x), "b": np.prod(x)}


def test_dict_literals_returned_on_two_paths():
    check_all(dict_out_branches, np.array([0.5, 0.4, -0.1]))
    check_all(dict_out_branches, np.array([-0.5, 0.4, -0.1]))


def aux_named(x):
    aux = {"norm": np.linalg.norm(x)}
    return np.sum(np.sin(x)), aux


def test_has_aux_named_dict_literal():
    x = rn(3)
    g, aux = sg.grad(aux_named, has_aux=True)(x)
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(aux["norm"], np.linalg.norm(x))


def dict_const_values(x):
    return {"y": x ** 2, "c": 1.0, "n": 3}


def test_dict_output_with_constant_values_jvp_vjp_jacobian():
    x = rn(2)
    val, tan = sg.jvp(dict_const_values)(x, np.ones(2))
    np.testing.assert_allclose(tan["y"], 2 * x)
    assert val["n"] == 3 and tan["c"] == 0.0
    _, g = sg.vjp(dict_const_values)(x, {"y": np.ones(2), "c": 1.0, "n": 0})
    np.testing.assert_allclose(g, 2 * x)
    J = sg.jacobian(dict_const_values)(x)
    np.testing.assert_allclose(J["y"], np.diag(2 * x))
    np.testing.assert_allclose(J["c"], np.zeros(2))


def test_vjp_cotangent_missing_a_key_is_a_clear_error():
    with pytest.raises(ValueError, match="cotangent must be a dict"):
        sg.vjp(dict_const_values)(rn(2), {"y": np.ones(2)})


def dict_in_dict_out(p, x):
    return {"w": p["w"] * x, "b": p["b"] + np.sum(x)}


def test_dict_in_dict_out_vjp():
    p = {"w": rn(2), "b": 0.3}
    _, g = sg.vjp(dict_in_dict_out)(p, 0.5, {"w": np.ones(2), "b": 1.0})
    np.testing.assert_allclose(g["w"], np.full(2, 0.5))
    np.testing.assert_allclose(g["b"], 1.0)


def test_dict_in_dict_out_jacobian():
    p = {"w": np.array([1.0, 2.0]), "b": 0.3}
    J = sg.jacobian(dict_in_dict_out)(p, 0.5)
    np.testing.assert_allclose(J["w"]["w"], 0.5 * np.eye(2))
    np.testing.assert_allclose(J["b"]["b"], 1.0)
    np.testing.assert_allclose(J["w"]["b"], np.zeros(2))


def dict_out_loop_branch(x):
    d = {"u": x, "k": 0.0}
    for _ in range(4):
        if np.sum(d["u"]) > 0:
            d = {"u": d["u"] * 0.5 - 0.1, "k": d["k"] + 1.0}
        else:
            d = {"u": np.sin(d["u"]) + 0.3, "k": d["k"] * x[0]}
    return d


def test_dict_rebound_in_loop_branches_returned():
    check_all(dict_out_loop_branch, np.array([0.7, 0.2, 0.4]))


def dict_out_nested_values(x):
    return {"pair": (x[0] * x[1], np.sum(x)), "vec": np.cos(x)}


def test_dict_output_with_a_tuple_value():
    check_all(dict_out_nested_values, rn(3))
