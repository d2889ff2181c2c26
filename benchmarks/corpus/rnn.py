# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Recurrent networks: tanh RNN in four spellings (state passed in or np.zeros; W @ h or np.dot), LSTM, GRU."""

import numpy as np

from benchmarks.corpus.program import Program

T, H, I = 200, 64, 32


# --- the spelling family: the same RNN four ways
def rnn_passed(Wxh, Whh, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(Wxh @ xs[t] + Whh @ h + b)
    return np.sum(h * h)


def rnn_zeros(Wxh, Whh, b, xs):
    h = np.zeros(64)
    for t in range(xs.shape[0]):
        h = np.tanh(Wxh @ xs[t] + Whh @ h + b)
    return np.sum(h * h)


def rnn_dot(Wxh, Whh, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, h) + b)
    return np.sum(h * h)


def rnn_zeros_dot(Wxh, Whh, b, xs):
    h = np.zeros(64)
    for t in range(xs.shape[0]):
        h = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, h) + b)
    return np.sum(h * h)


def _rnn_params():
    r = np.random.default_rng(50)
    return (r.standard_normal((H, I)) / np.sqrt(I), r.standard_normal((H, H)) * 0.9 / np.sqrt(H),
            0.1 * r.standard_normal(H), r.standard_normal((T, I)))


# --- gated cells
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm(Wx, Wh, b, xs, Wout):
    hidden = Wh.shape[1]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    for t in range(xs.shape[0]):
        z = np.dot(Wx, xs[t]) + np.dot(Wh, h) + b
        i = sigmoid(z[:hidden])
        f = sigmoid(z[hidden:2 * hidden])
        o = sigmoid(z[2 * hidden:3 * hidden])
        g = np.tanh(z[3 * hidden:])
        c = f * c + i * g
        h = o * np.tanh(c)
    y = Wout @ h
    return np.sum(y ** 2)


def gru(Wz, Uz, Wr, Ur, Wn, Un, xs, h0):
    h = h0
    for t in range(len(xs)):
        x = xs[t]
        z = sigmoid(Wz @ x + Uz @ h)
        r = sigmoid(Wr @ x + Ur @ h)
        n = np.tanh(Wn @ x + Un @ (r * h))
        h = (1 - z) * n + z * h
    return np.mean(h**2)


def log_softmax(v):
    m = np.max(v)
    return v - m - np.log(np.sum(np.exp(v - m)))


def rnn_classifier(Wxh, Whh, Why, xs, labels):
    h = np.zeros(Whh.shape[0])
    loss = 0.0
    for t in range(xs.shape[0]):
        h = np.tanh(Wxh @ xs[t] + Whh @ h)
        logp = log_softmax(Why @ h)
        loss = loss - logp[labels[t]]
    return loss / xs.shape[0]


def _lstm_inputs():
    r = np.random.default_rng(51)
    hid, inp, steps = 32, 16, 60
    return (r.standard_normal((4 * hid, inp)) / 4, r.standard_normal((4 * hid, hid)) / 6,
            0.1 * r.standard_normal(4 * hid), r.standard_normal((steps, inp)), r.standard_normal((4, hid)) / 6)


def _gru_inputs():
    r = np.random.default_rng(52)
    hid, inp, steps = 32, 16, 60
    mats = []
    for k in range(3):
        mats += [r.standard_normal((hid, inp)) / 4, r.standard_normal((hid, hid)) / 6]
    return (*mats, r.standard_normal((steps, inp)), np.zeros(hid))


def _clf_inputs():
    r = np.random.default_rng(53)
    return (r.standard_normal((48, 20)) / 4.5, r.standard_normal((48, 48)) / 7, r.standard_normal((10, 48)) / 7,
            r.standard_normal((80, 20)), r.integers(0, 10, 80))


PROGRAMS = [
    Program("rnn_passed", "rnn", rnn_passed, lambda: (*_rnn_params(), np.zeros(H)), (0, 1, 2),
            "tanh RNN T=200 H=64 I=32, state passed in, W @ h", group="rnn"),
    Program("rnn_zeros", "rnn", rnn_zeros, _rnn_params, (0, 1, 2),
            "the same, state started as h = np.zeros(64)", group="rnn"),
    Program("rnn_dot", "rnn", rnn_dot, lambda: (*_rnn_params(), np.zeros(H)), (0, 1, 2),
            "the same, state passed in, np.dot(W, h)", group="rnn"),
    Program("rnn_zeros_dot", "rnn", rnn_zeros_dot, _rnn_params, (0, 1, 2),
            "the same, np.zeros state and np.dot", group="rnn"),
    Program("lstm", "rnn", lstm, _lstm_inputs, (0, 1, 2, 4),
            "LSTM H=32, 60 steps, np.dot, gates sliced from one product, np.zeros state"),
    Program("gru", "rnn", gru, _gru_inputs, (0, 1, 2, 3, 4, 5),
            "GRU H=32, 60 steps, @, state passed in, len(xs)"),
    Program("rnn_classifier", "rnn", rnn_classifier, _clf_inputs, (0, 1, 2),
            "RNN with a log-softmax cross-entropy at each of 80 steps, logp[labels[t]]"),
]
