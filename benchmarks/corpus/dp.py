# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Dynamic programming with a table: soft-DTW, an HMM forward pass, soft value iteration."""

import math

import numpy as np

from benchmarks.corpus.program import Program


def softmin3(a, b, c, gamma):
    m = min(a, b, c)
    s = math.exp(-(a - m) / gamma) + math.exp(-(b - m) / gamma) + math.exp(-(c - m) / gamma)
    return m - gamma * math.log(s)


def soft_dtw(x, y, gamma):
    n = x.shape[0]
    m = y.shape[0]
    D = (x[:, None] - y[None, :]) ** 2
    R = np.full((n + 1, m + 1), 1e10)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            R[i, j] = D[i - 1, j - 1] + softmin3(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1], gamma)
    return R[n, m]


def logsumexp(a, axis=None):
    amax = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - amax), axis=axis, keepdims=True)) + amax
    return np.squeeze(out, axis=axis) if axis is not None else out.item()


def hmm_forward(log_A, log_pi, log_B, obs):
    alpha = log_pi + log_B[:, obs[0]]
    for t in range(1, len(obs)):
        alpha = logsumexp(alpha[:, None] + log_A, axis=0) + log_B[:, obs[t]]
    return -logsumexp(alpha)


def soft_value_iteration(R, P, tau):
    # R: (S, A) rewards, P: (S, A, S) transitions; V = tau logsumexp((R + 0.9 P V) / tau)
    V = np.zeros(R.shape[0])
    gap = 1.0
    while gap > 1e-8:
        Q = R + 0.9 * P @ V
        m = np.max(Q, axis=1)
        V_new = m + tau * np.log(np.sum(np.exp((Q - m[:, None]) / tau), axis=1))
        gap = np.max(np.abs(V_new - V))
        V = V_new
    return V[0]


def _dtw_inputs():
    t = np.linspace(0, 2 * np.pi, 30)
    return (np.sin(t), np.sin(np.linspace(0, 2 * np.pi, 26) + 0.3) * 1.1, 0.5)


def _hmm_inputs():
    r = np.random.default_rng(80)
    S, O, T = 8, 12, 150
    A = r.uniform(0.1, 1, (S, S))
    B = r.uniform(0.1, 1, (S, O))
    return (np.log(A / A.sum(1, keepdims=True)), np.log(np.full(S, 1 / S)), np.log(B / B.sum(1, keepdims=True)),
            r.integers(0, O, T))


def _vi_inputs():
    r = np.random.default_rng(81)
    S, A = 20, 4
    P = r.uniform(0, 1, (S, A, S))
    return (r.standard_normal((S, A)), P / P.sum(-1, keepdims=True), 0.5)


PROGRAMS = [
    Program("soft_dtw", "dp", soft_dtw, _dtw_inputs, (0, 1, 2),
            "soft-DTW of 30- and 26-point series: table R[i, j] written cell by cell, softmin helper with math"),
    Program("hmm_forward", "dp", hmm_forward, _hmm_inputs, (0, 1, 2),
            "HMM forward algorithm in log space, 8 states, 150 observations, logsumexp helper"),
    Program("soft_value_iteration", "dp", soft_value_iteration, _vi_inputs, (0, 1, 2),
            "soft value iteration, 20 states x 4 actions, until the sup-norm change < 1e-8"),
]
