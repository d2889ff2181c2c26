# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Softmax attention: one head, several heads in a loop, row by row, and a small transformer block."""

import numpy as np

from benchmarks.corpus.program import Program


def softmax(s, axis=-1):
    e = np.exp(s - np.max(s, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def self_attention(X, Wq, Wk, Wv):
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    A = softmax(Q @ K.T / np.sqrt(Q.shape[1]))
    return np.sum((A @ V) ** 2)


def multihead_attention(X, Wq, Wk, Wv, Wo, heads=4):
    d = Wq.shape[1] // heads
    out = 0.0
    for hd in range(heads):
        q = X @ Wq[:, hd * d:(hd + 1) * d]
        k = X @ Wk[:, hd * d:(hd + 1) * d]
        v = X @ Wv[:, hd * d:(hd + 1) * d]
        att = softmax(np.dot(q, k.T) / np.sqrt(d))
        out = out + att @ v @ Wo[hd * d:(hd + 1) * d]
    return np.mean(np.tanh(out))


def attention_rows(Q, K, V):
    total = 0.0
    scale = 1.0 / np.sqrt(Q.shape[1])
    for i in range(Q.shape[0]):
        s = K @ Q[i] * scale
        w = np.exp(s - np.max(s))
        w = w / w.sum()
        o = w @ V
        total += np.dot(o, o)
    return total


def layer_norm(x, eps=1e-5):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def transformer_block(X, Wq, Wk, Wv, W1, W2):
    q = X @ Wq
    k = X @ Wk
    v = X @ Wv
    a = softmax(q @ k.T / np.sqrt(q.shape[-1]))
    h = layer_norm(X + a @ v)
    f = np.maximum(h @ W1, 0) @ W2
    out = layer_norm(h + f)
    return np.sum(out[:, 0] * out[:, 1])


def _attn_inputs(T=64, d=32):
    r = np.random.default_rng(60)
    return (r.standard_normal((T, d)), *(r.standard_normal((d, d)) / np.sqrt(d) for _ in range(3)))


def _mha_inputs():
    r = np.random.default_rng(61)
    T, d = 48, 32
    return (r.standard_normal((T, d)), *(r.standard_normal((d, d)) / np.sqrt(d) for _ in range(4)))


def _rows_inputs():
    r = np.random.default_rng(62)
    return (r.standard_normal((64, 16)), r.standard_normal((80, 16)), r.standard_normal((80, 16)))


def _block_inputs():
    r = np.random.default_rng(63)
    T, d = 32, 32
    return (r.standard_normal((T, d)), *(r.standard_normal((d, d)) / np.sqrt(d) for _ in range(3)),
            r.standard_normal((d, 4 * d)) / np.sqrt(d), r.standard_normal((4 * d, d)) / np.sqrt(4 * d))


PROGRAMS = [
    Program("self_attention", "attention", self_attention, _attn_inputs, (0, 1, 2, 3),
            "single-head self-attention, T=64 d=32, softmax helper with keepdims"),
    Program("multihead_attention", "attention", multihead_attention, _mha_inputs, (0, 1, 2, 3, 4),
            "4 heads in a Python loop over column slices, np.dot and @, heads default omitted"),
    Program("attention_rows", "attention", attention_rows, _rows_inputs, (0, 1, 2),
            "attention one query row at a time (64 rows), w.sum() method"),
    Program("transformer_block", "attention", transformer_block, _block_inputs, (0, 1, 2, 3, 4, 5),
            "attention + layer norm + ReLU MLP, T=32 d=32"),
]
