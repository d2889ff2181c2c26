# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Unrolled optimizers: an inner gradient-descent loop whose result is differentiated."""

import math

import numpy as np

from benchmarks.corpus.program import Program


def gd_quadratic(A, b, x0, lr=0.05, steps=150):
    x = x0
    for _ in range(steps):
        grad = A @ x - b
        x = x - lr * grad
    return 0.5 * x @ A @ x - b @ x


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def gd_logreg_meta(X, y, w0, lr):
    # train on the first half, return the loss on the second half
    Xtr = X[:100]
    ytr = y[:100]
    w = w0
    for it in range(60):
        p = sigmoid(Xtr @ w)
        w = w - lr * Xtr.T @ (p - ytr) / 100
    p_val = sigmoid(X[100:] @ w)
    return -np.mean(y[100:] * np.log(p_val) + (1 - y[100:]) * np.log(1 - p_val))


def momentum_rosenbrock(x0, y0, lr):
    x = x0
    y = y0
    vx = 0.0
    vy = 0.0
    for it in range(800):
        gx = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x)
        gy = 200.0 * (y - x * x)
        vx = 0.9 * vx - lr * gx
        vy = 0.9 * vy - lr * gy
        x = x + vx
        y = y + vy
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2 + math.exp(-x * y)


def adam_unrolled(w0, X, y):
    w = w0
    m = np.zeros_like(w0)
    v = np.zeros_like(w0)
    b1 = 0.9
    b2 = 0.999
    for t in range(1, 41):
        r = X @ w - y
        g = 2 * X.T @ r / X.shape[0]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1**t)
        vhat = v / (1 - b2**t)
        w = w - 0.05 * mhat / (np.sqrt(vhat) + 1e-8)
    return np.mean((X @ w - y) ** 2)


def sgd_minibatch(W, X, Y):
    for epoch in range(3):
        for k in range(8):
            xb = X[k * 16:(k + 1) * 16]
            yb = Y[k * 16:(k + 1) * 16]
            err = xb @ W - yb
            W = W - 0.01 * xb.T @ err
    return np.sum((X @ W - Y) ** 2)


def _gd_inputs():
    r = np.random.default_rng(40)
    M = r.standard_normal((40, 40))
    A = M @ M.T / 40 + 0.5 * np.eye(40)
    return (A, r.standard_normal(40), np.zeros(40))


def _logreg_inputs():
    r = np.random.default_rng(41)
    X = r.standard_normal((200, 10))
    y = (X @ r.standard_normal(10) + 0.5 * r.standard_normal(200) > 0).astype(float)
    return (X, y, 0.1 * r.standard_normal(10), 0.5)


def _adam_inputs():
    r = np.random.default_rng(42)
    X = r.standard_normal((120, 15))
    return (0.1 * r.standard_normal(15), X, X @ r.standard_normal(15) + 0.1 * r.standard_normal(120))


def _sgd_inputs():
    r = np.random.default_rng(43)
    X = r.standard_normal((128, 20))
    return (0.1 * r.standard_normal((20, 5)), X, X @ r.standard_normal((20, 5)))


PROGRAMS = [
    Program("gd_quadratic", "optimizer", gd_quadratic, _gd_inputs, (0, 1, 2),
            "150 gradient steps on a 40-d quadratic, lr and steps defaults omitted"),
    Program("gd_logreg_meta", "optimizer", gd_logreg_meta, _logreg_inputs, (2, 3),
            "60 steps of logistic regression training; validation loss wrt init and learning rate"),
    Program("momentum_rosenbrock", "optimizer", momentum_rosenbrock, lambda: (-1.2, 1.0, 1e-4), (0, 1, 2),
            "heavy-ball on Rosenbrock, 800 steps on Python floats", math_forward=momentum_rosenbrock),
    Program("adam_unrolled", "optimizer", adam_unrolled, _adam_inputs, (0, 1, 2),
            "40 Adam steps on least squares (np.sqrt, b1**t)"),
    Program("sgd_minibatch", "optimizer", sgd_minibatch, _sgd_inputs, (0, 1, 2),
            "3 epochs of minibatch SGD over slices X[k*16:(k+1)*16]"),
]
