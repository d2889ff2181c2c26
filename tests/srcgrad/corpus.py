# ruff: noqa: B007, B905 -- user-style code: loop counters that only count, plain zip
"""The corpus: user functions covering every construct the compiler supports.

Inputs are chosen by parameter name (see `make_args`): x, y, z are Python floats; a, b, c are arrays of
shape (4,); M, N are (3, 3); xs is (5, 3); n, k are ints (static). Every function's compiled gradient
with respect to each float/array parameter is checked against central finite differences.
"""

import math

import numpy as np

SCALE = 0.5
COUNT = [0]


def helper_square(u):
    return u * u


def helper_affine(u, w, shift=1.0):
    return w * u + shift


def helper_two(u, w):
    return u * w, u + w


def helper_branch(u):
    if u > 0.0:
        return np.sin(u)
    return u * u


def helper_loop(u, m):
    s = u
    for i in range(m):
        s = s * 0.5 + u
    return s


def recursive_power(u, m):
    if m == 0:
        return 1.0
    return u * recursive_power(u, m - 1)


def make_scaled(factor):
    def scaled(x):
        return factor * np.sin(x) + SCALE * x
    return scaled


closure_scaled = make_scaled(3.0)


# ------------------------------------------------------------------------------ straight line, scalars
def s_add(x, y):
    return x + y


def s_sub(x, y):
    return x - y * 2.0


def s_mul(x, y):
    return x * y


def s_div(x, y):
    return x / y


def s_pow_const(x):
    return x ** 3


def s_pow_var(x, y):
    return x ** y


def s_neg(x):
    return -x * 2.0


def s_chain(x):
    return np.exp(np.sin(x)) * np.cos(x)


def s_math(x):
    return math.sin(x) * math.exp(x) + math.sqrt(x) + math.log(x)


def s_tanh_sigmoid(x):
    return np.tanh(x) + 1.0 / (1.0 + np.exp(-x))


def s_reuse(x):
    y = x * x
    z = y * x + y
    return z * y


def s_overwrite(x):
    y = x * 2.0
    y = y * y
    y = np.sin(y)
    return y


def s_augassign(x, y):
    z = x
    z += y
    z *= x
    z -= 1.0
    z /= y
    return z


def s_tuple_swap(x, y):
    a, b = x, y
    a, b = b, a * b
    return a * b + a


def s_const_output(x):
    return 3.0


def s_unused_input(x, y):
    return x * x


def s_global(x):
    return SCALE * x * x


def s_abs(x):
    return abs(x - 2.0) + np.abs(x)


def s_maximum(x, y):
    return np.maximum(x, y) + np.minimum(x, 2.0 * y)


def s_arctan2(x, y):
    return np.arctan2(x, y) + np.hypot(x, y)


def s_ifexp(x):
    return x * x if x > 1.0 else -x


def s_static_int(x, n):
    return x * n + x ** n


def s_default(x, y=2.0):
    return x * y


def s_comparison_passthrough(x):
    flag = x > 0.0
    k = 2.0 if flag else 3.0
    return x * k


def s_nondiff_int(x):
    m = int(x * 10.0)
    return x * m


# -------------------------------------------------------------------------------------- arrays
def a_sum(a):
    return np.sum(a * a)


def a_method_sum(a):
    return (a * 2.0).sum()


def a_mean(a):
    return np.mean(np.sin(a))


def a_broadcast(a, x):
    return np.sum(a * x + x)


def a_matrix_vector(M, v):
    return np.sum(M @ v)


def a_matmul(M, N):
    return np.sum((M @ N) ** 2)


def a_transpose(M):
    return np.sum(M.T @ M)


def a_axis_sum(M):
    s = M.sum(axis=0)
    return np.sum(s * s)


def a_keepdims(M):
    return np.sum(M / M.sum(axis=1, keepdims=True))


def a_reshape(M):
    return np.sum(M.reshape(9) * np.arange(9.0))


def a_getitem_int(a):
    return a[0] * a[1] + a[-1]


def a_getitem_slice(a):
    return np.sum(a[1:3] * a[:2])


def a_getitem_2d(M):
    return M[0, 1] * M[2, 2] + np.sum(M[:, 0])


def a_getitem_mask(a):
    return np.sum(a[a > 0.0] ** 2)


def a_setitem(a):
    b = a * 1.0
    b[0] = a[1] * 3.0
    return np.sum(b * b)


def a_setitem_slice_aug(a):
    b = a * 2.0
    b[1:3] += a[0:2]
    return np.sum(b ** 2)


def a_setitem_loop(a, n):
    b = np.zeros(n)
    for i in range(n):
        b[i] = a[i] * a[i + 1]
    return np.sum(b)


def a_no_mutation(a):
    a2 = a
    a2[0] = 5.0 * a[1]
    return np.sum(a2)


def a_where(a):
    return np.sum(np.where(a > 0.0, a * a, -a))


def a_maximum_relu(a):
    return np.sum(np.maximum(a, 0.0) * a)


def a_norm(a):
    return np.linalg.norm(a)


def a_exp_log(a):
    return np.sum(np.log(np.exp(a) + 1.0))


def a_dot(a, b):
    return np.dot(a, b) * np.sum(a)


def a_stack_literal(x, y):
    v = np.array([x, y * x, 2.0])
    return np.sum(v * v)


def a_max(a):
    return np.max(a * 2.0) + a.min()


def a_attr_shape(a):
    n = a.shape[0]
    return np.sum(a) / n


def a_tanh_chain(a, M):
    h = np.tanh(M @ a[:3])
    return np.sum(h * h)


# ---------------------------------------------------------------------------------- control flow
def c_if(x):
    if x > 1.0:
        y = x * x
    else:
        y = np.sin(x)
    return y


def c_elif(x, y):
    if x > 2.0:
        z = x
    elif x > 0.5:
        z = x * y
    else:
        z = y
    return z * 2.0


def c_if_no_else(x):
    y = x
    if x > 0.0:
        y = y * 3.0
    return y


def c_nested_if(x, y):
    z = 0.0
    if x > 0.0:
        if y > 0.0:
            z = x * y
        else:
            z = x - y
    else:
        z = y
    return z


def c_for_range(x, n):
    s = 0.0
    for i in range(n):
        s = s + x * i
    return s


def c_for_range_data(x):
    s = x
    for i in range(int(x * 3.0)):
        s = s * 1.1 + x
    return s


def c_for_array(a):
    s = 0.0
    for e in a:
        s = s + e * e
    return s


def c_for_rows(xs):
    s = 0.0
    for row in xs:
        s = s + np.sum(row) * row[0]
    return s


def c_while(x):
    y = x
    while y < 10.0:
        y = y * 1.5 + 0.1
    return y


def c_while_norm(a):
    y = a
    while np.linalg.norm(y) < 20.0:
        y = y * 2.0
    return np.sum(y)


def c_while_counter(x):
    y = x
    k = 0
    while k < 4:
        y = np.sin(y) + x
        k += 1
    return y


def c_break(x):
    s = x
    for i in range(10):
        s = s * 1.2
        if s > 5.0:
            break
        s = s + x
    return s


def c_continue(x):
    s = 0.0
    for i in range(6):
        if i % 2 == 0:
            continue
        s = s + x * i
    return s


def c_while_break(x):
    y = x
    while True:
        y = y * 2.0
        if y > 7.0:
            break
    return y


def c_early_return(x):
    if x > 1.0:
        return x * x
    y = np.cos(x)
    return y * x


def c_return_in_loop(x):
    s = x
    for i in range(10):
        s = s * 1.5
        if s > 4.0:
            return s * x
    return s


def c_nested_loops(x, n):
    s = x
    for i in range(n):
        for j in range(i + 1):
            s = s * 0.9 + x * j
    return s


def c_nested_while_for(x):
    s = x
    k = 0
    while s < 20.0:
        for j in range(3):
            s = s + x * 0.5
        k += 1
    return s


def c_loop_branch(x, n):
    s = x
    for i in range(n):
        if s > 2.0:
            s = s * 0.5
        else:
            s = s * s + x
    return s


def c_loop_overwrite_temp(a, n):
    h = a
    for i in range(n):
        t = np.tanh(h)
        h = t * 0.5 + a
    return np.sum(h)


def c_data_dependent_trip(x):
    n = 0
    y = x
    while y > 0.01:
        y = y * 0.5
        n += 1
    return y * n


def c_list_append_stack(a, n):
    hs = []
    h = a
    for i in range(n):
        h = np.sin(h) + a
        hs.append(h)
    H = np.stack(hs)
    return np.sum(H * H)


def c_list_array(x, n):
    vals = []
    for i in range(n):
        vals.append(x * i)
    v = np.array(vals)
    return np.sum(v ** 2)


def c_loop_setitem_accumulate(a):
    b = a * 0.0
    for i in range(3):
        b[i:i + 2] += a[i] * a[i + 1]
    return np.sum(b * b)


def c_fifty_lines(x, y, n):
    s = 0.0
    acc = x
    for i in range(n):
        if acc > 1.0:
            acc = acc * 0.5 + y
        elif acc < -1.0:
            acc = acc * 0.7 - y
        else:
            acc = np.sin(acc) + x * y
        s = s + acc * acc
    k = 0
    while s < 50.0:
        s = s * 1.5 + x
        k += 1
        if k > 20:
            break
    t = np.tanh(s * 0.01)
    u = t * x + np.cos(y)
    for j in range(3):
        u = u + np.exp(-u * u) * j
        if u > 3.0:
            continue
        u = u * 1.01
    v = u
    w = v * v
    z = w + v
    z = z * np.sin(z)
    a1 = z + x
    a2 = a1 * y
    a3 = a2 - x
    a4 = a3 / (1.0 + y * y)
    a5 = np.sqrt(a4 * a4 + 1.0)
    a6 = a5 * a5
    a7 = a6 + a1
    a8 = np.log(1.0 + a7 * a7)
    total = 0.0
    m = 0
    while m < 4:
        total = total + a8 * m
        m += 1
    if total > 10.0:
        return total * 0.1
    r = total + a5
    r = r * x
    r = r + y
    return r


# ------------------------------------------------------------------------------------------- calls
def f_call_helper(x):
    return helper_square(np.sin(x)) + x


def f_call_kwargs(x, y):
    return helper_affine(x, y, shift=2.0) * helper_affine(y, x)


def f_call_tuple(x, y):
    p, q = helper_two(x, y)
    return p * q


def f_call_branch(x):
    return helper_branch(x) + helper_branch(-x)


def f_call_loop(x, n):
    return helper_loop(x, n) * x


def f_recursion(x, n):
    return recursive_power(x, n) + x


def f_call_in_loop(x, n):
    s = x
    for i in range(n):
        s = helper_square(s) * 0.5 + x
    return s


def f_closure(x):
    return closure_scaled(x) * x


def f_closure_var(x):
    factor = 2.5

    return x * factor


def nd_detach(a):
    scale = np.sum(a).item()
    return np.sum(a * scale)


def f_nested_calls(x):
    return helper_square(helper_square(x) + helper_affine(x, x))


def f_call_array(a, b):
    return np.sum(helper_affine(a, b) * helper_square(b))


def f_unused_call(x):
    helper_square(x)
    return x * 2.0





def a_copy_method(a):
    b = a.copy()
    b[0] = 2.0 * b[1]
    return np.sum(b * a)

def c_list_history(a, n):
    hs = [a]
    for i in range(n):
        hs.append(np.tanh(hs[-1] * 0.9 + a))
    return np.sum(hs[-1] * hs[1])


def c_list_iterate(x, n):
    vals = [x, x * 2.0]
    for i in range(n):
        vals.append(vals[i] * vals[i + 1] * 0.5)
    s = 0.0
    for v in vals:
        s = s + v
    return s


def c_list_stack_and_read(a, n):
    hs = []
    h = a
    for i in range(n):
        h = np.sin(h) * 1.1
        hs.append(h)
    return np.sum(np.stack(hs) ** 2)





def c_tuple_state(x, y):
    state = (x, y * 2.0)
    for i in range(3):
        a, b = state
        state = (a * b * 0.5 + 0.1, np.sin(a) + b * 0.5)
    p, q = state
    return p * q + state[0]


def c_rnn_outer(M, xs):
    h = xs[0] * 0.0
    for t in range(xs.shape[0]):
        if t % 2 == 0:
            h = np.tanh(M @ xs[t] + M @ h)
        else:
            h = np.tanh(M @ h) + xs[t]
    return np.sum(h * h)


def c_rnn_two_weights(M, N, xs):
    h = xs[0]
    for t in range(1, xs.shape[0]):
        h = np.tanh(M @ xs[t] + N @ h)
        for k in range(2):
            h = h + 0.1 * np.sin(N @ h)
    return np.sum(h)


def m_builtins_math(x, y):
    return max(x * y, 0.5) + min(x, y) * math.log(x, 2.0) + math.sin(x) * math.hypot(x, y)


def c_enumerate(a):
    s = 0.0
    for i, e in enumerate(a):
        s = s + e * e * (i + 1)
    for k, e in enumerate(a, 1):
        s = s + np.sin(e) * k
    return s


def c_zip(a, b):
    s = 0.0
    for p, q in zip(a, b):
        s = s + p * q + np.tanh(p - q)
    return s


# ---- boolean masks of matrices (the selection's length depends on the values)
def a_mask_matrix(M):
    return np.sum(np.sin(M[M > 0.0]))


def a_mask_rows(M, N):
    rows = M[N[:, 0] > -5.0]
    return np.sum(np.sum(rows, axis=1) ** 2)


# ---- loops over list literals of arrays of different shapes
def a_loop_over_weights(M, a):
    reg = 0.0
    for W in [M, a, M[:2]]:
        reg = reg + np.sum(W * W * W)
    return reg


def a_zip_over_weights(M, a):
    reg = 0.0
    for W, s in zip([M, a], [0.5, 2.0]):
        reg = reg + s * np.sum(np.sin(W))
    return reg


# ---- a list both stacked and read by index, or stacked twice
def a_stack_and_index(a):
    xs = []
    for i in range(3):
        xs.append(a * i + np.sin(a))
    return np.sum(np.stack(xs) ** 2) + xs[-1][0] * xs[1][2]


def a_stack_twice(a):
    xs = []
    for i in range(3):
        xs.append(a * i + np.sin(a))
    return np.sum(np.stack(xs) ** 2) + np.sum(np.stack(xs, axis=1) * 3.0)


# ---- tuple assignment into subscripts; max / min of several numbers
def a_subscript_swap(a):
    b = a * 1.0
    b[0], b[1] = b[1], b[0] * b[2]
    return np.sum(b * np.arange(4))


def s_max_of_three(x, y):
    return max(x * x, y, 0.5) + min(x, y * y, 2.0, 3.0 * x)


def a_enumerate_zip(a, b):
    s = 0.0
    for i, (u, w) in enumerate(zip(a, b), 1):
        s = s + i * u * w * w
    return s


# ---- sums of list literals; the % operator
def a_list_reductions(a, b):
    return np.sum(sum([a * a, b, np.sin(a)])) + np.sum([a, b * b]) + np.mean([a, b], axis=0)[1]


def s_modulo(x, y):
    return (x * 3.0) % 1.0 + x % y * y


# ---- a helper's tuple unpacked inside a loop (two saved values per call)
def c_tuple_helper_in_loop(x, y):
    s = 0.0
    for i in range(2):
        d, p = helper_two(x, y)
        s = s + d * p * (i + 1)
    return s


# ---- a helper that writes into its argument: fine when the caller assigns the result back
def helper_set_first(u, val):
    u[0] = val
    return u


def a_helper_writes_returned(a, b):
    c = a * 2.0
    c = helper_set_first(c, b[0] * b[1])
    return np.sum(c * c) + np.sum(helper_set_first(a * b, b[2]))


# ---- a branch inside a loop that some passes skip; a variable reset inside a loop
def c_newton_sqrt(x):
    r = x
    for i in range(100):
        fx = r * r - x
        if abs(fx) < 1e-13:
            break
        r = r - fx / (2.0 * r)
    return r


def c_branch_some_passes(x):
    s = 0.0
    for k in range(2):
        v = x + k
        if v < 1.6:
            s = s + v * v
    return s


def c_ternary_in_loop(x):
    s = 0.0
    for i in range(3):
        v = x * i
        s = s + (v if v < 1.5 else v * v)
    return s


def c_reset_in_loop(M, a):
    y = np.zeros(3)
    for i in range(3):
        acc = 0.0
        for j in range(3):
            acc = acc + M[i, j] * a[j]
        y[i] = np.tanh(acc)
    return np.sum(y ** 2)


# ---- hstack / vstack of list literals, split unpacked at once
def a_hstack_vectors(a, b):
    return np.sum(np.hstack([a, np.sin(b)]) ** 2)


def a_hstack_matrices(M, N):
    return np.sum(np.hstack((M, N * N)) * np.hstack([N, M]))


def a_vstack_rows(a, b):
    return np.sum(np.vstack([a, b * a, np.cos(b)]) ** 3)


def a_vstack_matrix_and_row(M, a):
    return np.sum(np.vstack([M, a[:3]]) @ a[:3])


def a_split_sections(a):
    p, q = np.split(a, 2)
    return np.sum(p * q * q)


def a_split_indices_axis(M, b):
    u, w = np.split(M, [1], axis=1)
    return np.sum(u ** 2) + np.sum(w * b[1:3])


def a_split_rebinds_its_input(a):
    a, b = np.split(a, [3])
    return np.sum(a * np.exp(b))


# ---- m_: checked by tests/srcgrad/test_api.py only (the eager tape does not run them on Tensors)
def m_concatenate(a, b):
    return np.sum(np.concatenate([a, b * b], axis=0) ** 2)


def m_einsum(a, b):
    return np.einsum("i,i->", a, b) + np.sum(np.einsum("i,j->ij", a, b) ** 2)


CORPUS = [v for k, v in sorted(globals().items()) if callable(v) and k[:2] in ("s_", "a_", "c_", "f_")]
