"""Comprehensions and generators: list, dict and generator comprehensions, np.array / np.stack of them,
and generator functions consumed by a for loop or a call."""

import numpy as np

from tests.srcgrad.language.harness import Case


def sum_of_listcomp(w, X):
    return sum([np.tanh(x @ w) ** 2 for x in X])


def logistic_nll(w, X, y):
    # one generator expression over (row, label) pairs
    return sum(np.log1p(np.exp(-yi * (xi @ w))) for xi, yi in zip(X, y, strict=True))


def chain_array(x):
    # np.array of a list comprehension of scalars
    links = np.array([np.sin(x[i]) * x[i + 1] for i in range(len(x) - 1)])
    return np.sum(links ** 2)


def stacked_features(W, xs):
    H = np.stack([np.tanh(W @ x) for x in xs])
    return np.sum(H.mean(axis=0) ** 2)


def dict_of_terms(w, feats):
    terms = {name: np.sum(f * w) ** 2 for name, f in feats.items()}
    return sum(terms.values())


def squared_by_key(feats, w):
    # a dict comprehension over a dict's keys, then read by key and looped over
    sq = {k: feats[k] ** 2 for k in feats}
    total = np.sum(sq["a"] * w) + np.sum(np.sin(sq["b"]))
    for k in sq:
        total = total + 0.1 * np.sum(sq[k])
    return total


def pairwise_energy(X):
    D = np.array([[np.sum((xi - xj) ** 2) for xj in X] for xi in X])
    return np.sum(np.exp(-D))


def even_squares(x):
    return sum([x[i] ** 2 for i in range(len(x)) if i % 2 == 0]) + x[1] * x[2]


def poly_eval(c, t):
    # coefficients enumerated inside a generator expression
    return np.sum(sum(ck * t ** k for k, ck in enumerate(c)) ** 2)


def mean_of_listcomp(x):
    return np.mean([np.cos(v) * v for v in x])


def windows(x, k):
    for i in range(len(x) - k + 1):
        yield x[i:i + k]


def sliding_products(x):
    total = 0.0
    for w in windows(x, 3):
        total = total + np.prod(w)
    return total


def pairs(x):
    for i in range(0, len(x) - 1, 2):
        yield x[i] * x[i + 1]


def generator_into_sum(x):
    return sum(pairs(x)) + np.sum(np.stack(list(windows(x, 2))) ** 2)


def local_generator(x, decay):
    def discounted(rewards):
        g = 1.0
        for r in rewards:
            yield g * r
            g = g * decay

    return sum(discounted(np.tanh(x)))


def max_of_generator(x):
    # soft maximum over a generator of shifted values
    return np.log(sum(np.exp(v - 1.0) for v in x))


CASES = [
    Case("listcomp_sum", sum_of_listcomp, lambda r: (r.normal(size=3), r.normal(size=(4, 3)))),
    Case("genexp_sum_zip", logistic_nll,
         lambda r: (r.normal(size=3), r.normal(size=(5, 3)), np.sign(r.normal(size=5)))),
    Case("np_array_of_listcomp", chain_array, lambda r: (r.normal(size=5),)),
    Case("np_stack_of_listcomp", stacked_features, lambda r: (r.normal(size=(3, 3)), r.normal(size=(4, 3)))),
    Case("dictcomp_values", dict_of_terms,
         lambda r: (r.normal(size=3), {"a": r.normal(size=3), "b": r.normal(size=3)}), wrt=(0, 1)),
    Case("dictcomp_over_keys_read_by_key", squared_by_key,
         lambda r: ({"a": r.normal(size=3), "b": r.normal(size=3)}, r.normal(size=3))),
    Case("nested_listcomp", pairwise_energy, lambda r: (r.normal(size=(4, 2)),)),
    Case("listcomp_with_condition", even_squares, lambda r: (r.normal(size=5),),
         checks=("reverse", "forward", "tape")),
    Case("genexp_enumerate", poly_eval, lambda r: (r.normal(size=4), np.linspace(-1, 1, 5))),
    Case("np_mean_of_listcomp", mean_of_listcomp, lambda r: (r.normal(size=5),)),
    Case("generator_in_for_loop", sliding_products, lambda r: (r.normal(size=6),)),
    Case("generator_into_call", generator_into_sum, lambda r: (r.normal(size=6),)),
    Case("nested_generator", local_generator, lambda r: (r.normal(size=5), 0.9), wrt=(0, 1),
         checks=("reverse", "forward", "tape")),
    Case("genexp_logsumexp", max_of_generator, lambda r: (r.normal(size=5),),
         checks=("reverse", "forward", "tape")),
]
