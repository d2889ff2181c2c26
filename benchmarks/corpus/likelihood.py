# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Likelihoods written with loops: Gaussian mixtures, logistic and Poisson regression, Student-t."""

import math

import numpy as np

from benchmarks.corpus.program import Program


def gmm_components(data, mu, log_sigma, logit_w):
    K = mu.shape[0]
    w = np.exp(logit_w) / np.sum(np.exp(logit_w))
    comp = np.zeros((K, data.shape[0]))
    for k in range(K):
        s = np.exp(log_sigma[k])
        z = (data - mu[k]) / s
        comp[k] = np.log(w[k]) - 0.5 * z**2 - np.log(s) - 0.5 * np.log(2 * np.pi)
    m = np.max(comp, axis=0)
    return -np.sum(m + np.log(np.sum(np.exp(comp - m), axis=0)))


def gmm_points(x, mu, log_sigma, w):
    nll = 0.0
    for i in range(x.shape[0]):
        dens = w * np.exp(-0.5 * ((x[i] - mu) / np.exp(log_sigma)) ** 2) / np.exp(log_sigma)
        nll = nll - np.log(np.sum(dens) / math.sqrt(2 * math.pi))
    return nll


def logistic_loop(w, b, X, y):
    loss = 0.0
    for i in range(X.shape[0]):
        z = np.dot(X[i], w) + b
        if y[i] > 0.5:
            loss += np.log(1.0 + np.exp(-z))
        else:
            loss += np.log(1.0 + np.exp(z))
    return loss / X.shape[0]


def logistic_vec(w, X, y, l2=1e-3):
    z = X @ w
    p = 1 / (1 + np.exp(-z))
    ll = y * np.log(p) + (1 - y) * np.log(1 - p)
    return -np.mean(ll) + l2 * np.sum(w * w)


def poisson_glm_loop(beta, X, counts):
    ll = 0.0
    for i in range(len(counts)):
        eta = X[i] @ beta
        ll = ll + counts[i] * eta - math.exp(eta)
    return -ll


def student_t(mu, log_scale, nu, data):
    s = np.exp(log_scale)
    r = (data - mu) / s
    return np.sum(0.5 * (nu + 1) * np.log1p(r * r / nu) + log_scale)


def _gmm_inputs():
    r = np.random.default_rng(70)
    data = np.concatenate([r.normal(-2, 0.5, 1500), r.normal(1, 1.0, 1500), r.normal(4, 0.7, 1000)])
    return (data, np.array([-1.5, 0.0, 1.0, 3.0, 5.0]), np.zeros(5), np.zeros(5))


def _gmm_points_inputs():
    r = np.random.default_rng(71)
    return (r.normal(0, 2, 400), np.linspace(-3, 3, 6), np.zeros(6) - 0.2, np.full(6, 1 / 6))


def _logreg_data(n, d, seed):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d))
    y = (X @ r.standard_normal(d) + r.standard_normal(n) > 0).astype(float)
    return X, y


def _logistic_loop_inputs():
    X, y = _logreg_data(400, 8, 72)
    return (0.1 * np.ones(8), 0.0, X, y)


def _logistic_vec_inputs():
    X, y = _logreg_data(5000, 20, 73)
    return (0.05 * np.ones(20), X, y)


def _poisson_inputs():
    r = np.random.default_rng(74)
    X = 0.3 * r.standard_normal((500, 6))
    counts = r.poisson(np.exp(X @ np.linspace(-1, 1, 6) + 1.0)).astype(float)
    return (0.1 * np.ones(6), X, counts)


def _t_inputs():
    r = np.random.default_rng(75)
    return (0.1, 0.0, 4.0, r.standard_t(3, 20000))


PROGRAMS = [
    Program("gmm_components", "likelihood", gmm_components, _gmm_inputs, (1, 2, 3),
            "5-component Gaussian mixture NLL of 4000 points, loop over components writing comp[k]"),
    Program("gmm_points", "likelihood", gmm_points, _gmm_points_inputs, (1, 2, 3),
            "mixture NLL point by point (400 points), vectorized over 6 components"),
    Program("logistic_loop", "likelihood", logistic_loop, _logistic_loop_inputs, (0, 1),
            "logistic NLL sample by sample with a branch on the label (400 samples)"),
    Program("logistic_vec", "likelihood", logistic_vec, _logistic_vec_inputs, (0,),
            "vectorized logistic NLL, 5000x20, L2 default omitted"),
    Program("poisson_glm_loop", "likelihood", poisson_glm_loop, _poisson_inputs, (0,),
            "Poisson regression NLL sample by sample, math.exp of X[i] @ beta (500 samples)"),
    Program("student_t", "likelihood", student_t, _t_inputs, (0, 1, 2),
            "Student-t NLL of 20,000 points wrt location, log-scale and nu (np.log1p)"),
]
