"""Objectives as written for HIPS autograd, in the style of published AD benchmarks (our own versions):
a Gaussian mixture log-likelihood, bundle adjustment, an unrolled LSTM and a hand-skinning model."""

import functools
import math

import numpy as np

from tests.srcgrad.language.harness import Case

# --- Gaussian mixture log-likelihood -------------------------------------------------------------------


def gmm_objective(alphas, means, icf, x, wishart_gamma, wishart_m):
    n, d = x.shape
    k = alphas.shape[0]

    def logsumexp(v):
        mx = np.max(v)
        return mx + np.log(np.sum(np.exp(v - mx)))

    def build_lower(params):
        # the inverse Cholesky factor: its diagonal is exp(params[:d]), the entries below it follow,
        # column by column; `column` keeps its read position in an attribute
        def column(j):
            count = d - j - 1
            col = np.concatenate([np.zeros(j + 1), params[column.pos:column.pos + count]])
            column.pos += count
            return col

        column.pos = d
        return np.diag(np.exp(params[:d])) + np.column_stack([column(j) for j in range(d)])

    Ls = np.stack([build_lower(icf[i]) for i in range(k)])
    sum_qs = np.sum(icf[:, :d], axis=1)
    xcentered = np.stack(tuple(x[i] - means for i in range(n)))
    Lx = np.einsum("kij,nkj->nki", Ls, xcentered)
    inner = alphas + sum_qs - 0.5 * np.sum(Lx ** 2, axis=2)
    slse = sum(logsumexp(inner[i]) for i in range(n))
    const = -n * d * 0.5 * math.log(2 * math.pi)
    prior = 0.5 * wishart_gamma ** 2 * (np.sum(np.exp(icf[:, :d]) ** 2) + np.sum(icf[:, d:] ** 2)) \
        - wishart_m * np.sum(sum_qs)
    return const + slse - n * logsumexp(alphas) + prior


def _gmm_args(r):
    k, d, n = 2, 3, 4
    return (r.normal(size=k), r.normal(size=(k, d)), 0.3 * r.normal(size=(k, d + d * (d - 1) // 2)),
            r.normal(size=(n, d)), 1.0, 0.5)


# --- bundle adjustment ---------------------------------------------------------------------------------


def checked(fn):
    """Checks its array arguments are finite before the call (the kind of wrapper users put on helpers)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for a in args:
            assert np.all(np.isfinite(a))
        return fn(*args, **kwargs)

    return wrapper


def rodrigues_rotate(rot, X):
    theta = np.sqrt(np.sum(rot ** 2))
    axis = rot / theta
    cos, sin = np.cos(theta), np.sin(theta)
    return X * cos + np.cross(axis, X) * sin + axis * (axis @ X) * (1.0 - cos)


@checked
def project(cam, X):
    Xcam = rodrigues_rotate(cam[:3], X - cam[3:6])
    p = Xcam[:2] / Xcam[2]
    r2 = np.sum(p ** 2)
    distortion = 1.0 + cam[9] * r2 + cam[10] * r2 * r2
    return p * distortion * cam[6] + cam[7:9]


def ba_objective(cams, X, w, obs, feats):
    err = 0.0
    for i in range(obs.shape[0]):
        c, p = obs[i]
        r = w[i] * (project(cams[c], X[p]) - feats[i])
        err = err + np.sum(r ** 2) + (1.0 - w[i] ** 2) ** 2
    return err


def _ba_args(r):
    cams = np.zeros((2, 11))
    cams[:, :3] = 0.2 + 0.1 * r.normal(size=(2, 3))
    cams[:, 3:6] = 0.1 * r.normal(size=(2, 3))
    cams[:, 6] = 1.0 + 0.1 * r.normal(size=2)
    cams[:, 7:9] = 0.1 * r.normal(size=(2, 2))
    cams[:, 9:] = 0.01 * r.normal(size=(2, 2))
    X = r.normal(size=(3, 3)) + np.array([0.0, 0.0, 5.0])
    obs = np.array([[0, 0], [0, 1], [1, 1], [1, 2]])
    return cams, X, 0.9 + 0.1 * r.normal(size=4), obs, 0.1 * r.normal(size=(4, 2))


# --- unrolled LSTM -------------------------------------------------------------------------------------


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_cell(weight, bias, hidden, cell, x):
    h = hidden.shape[0]
    gates = np.concatenate((x, hidden, hidden, cell)) * weight + bias
    forget = sigmoid(gates[:h])
    ingate = sigmoid(gates[h:2 * h])
    outgate = sigmoid(gates[2 * h:3 * h])
    change = np.tanh(gates[3 * h:])
    cell = cell * forget + ingate * change
    hidden = outgate * np.tanh(cell)
    return hidden, cell


def lstm_predict(weights, extra, state, x):
    x = x * extra[0]
    for i in range(weights.shape[0] // 2):
        (state[2 * i], state[2 * i + 1]) = lstm_cell(weights[2 * i], weights[2 * i + 1],
                                                     state[2 * i], state[2 * i + 1], x)
        x = state[2 * i]
    return x * extra[1] + extra[2], state


def lstm_objective(weights, extra, state0, sequence):
    state = state0.copy()
    total = 0.0
    x = sequence[0]
    for t in range(sequence.shape[0] - 1):
        ypred, state = lstm_predict(weights, extra, state, x)
        ynorm = ypred - np.log(np.sum(np.exp(ypred)))
        total = total + np.sum(sequence[t + 1] * ynorm)
        x = sequence[t + 1]
    return -total / (sequence.shape[0] - 1)


def _lstm_args(r):
    layers, h, steps = 2, 3, 4
    return (0.5 * r.normal(size=(2 * layers, 4 * h)), r.normal(size=(3, h)), r.normal(size=(2 * layers, h)),
            r.normal(size=(steps, h)))


# --- hand tracking: linear blend skinning --------------------------------------------------------------


def hand_objective(theta, base_vertices, weights, parents, bone_offsets, targets):
    n_bones = len(parents)

    def rotation(aa):
        angle = np.sqrt(np.sum(aa ** 2) + 1e-12)
        k = aa / angle
        K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
        return np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * (K @ K)

    def bend(i):
        # each finger bone bends about z, then twists about x, by its two pose angles
        a, b = theta[6 + 2 * i], theta[7 + 2 * i]
        Rz = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
        Rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(b), -np.sin(b)], [0.0, np.sin(b), np.cos(b)]])
        return Rz @ Rx

    def absolute_transforms():
        Rs, ts = [], []
        for i in range(n_bones):
            R_local = bend(i)
            if parents[i] < 0:
                Rs.append(R_local)
                ts.append(bone_offsets[i])
            else:
                p = parents[i]
                Rs.append(Rs[p] @ R_local)
                ts.append(ts[p] + Rs[p] @ bone_offsets[i])
        return Rs, ts

    Rs, ts = absolute_transforms()
    skinned = sum(weights[:, i:i + 1] * ((base_vertices - bone_offsets[i]) @ Rs[i].T + ts[i])
                  for i in range(n_bones))
    posed = skinned @ rotation(theta[:3]).T + theta[3:6]
    return np.sum((posed - targets) ** 2)


def _hand_args(r):
    n_bones, n_verts = 3, 6
    w = r.uniform(0.1, 1.0, size=(n_verts, n_bones))
    offsets = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.2, 0.0]])
    return (0.3 * r.normal(size=6 + 2 * n_bones), r.normal(size=(n_verts, 3)),
            w / w.sum(axis=1, keepdims=True), [-1, 0, 1], offsets, r.normal(size=(n_verts, 3)))


CASES = [
    Case("hips_gmm", gmm_objective, _gmm_args, wrt=(0, 1, 2)),
    Case("hips_bundle_adjustment", ba_objective, _ba_args, wrt=(0, 1, 2)),
    Case("hips_lstm", lstm_objective, _lstm_args, wrt=(0, 1)),
    Case("hips_hand_skinning", hand_objective, _hand_args),
]
