# ruff: noqa: B007, E501 -- user-style code: loop counters that only count, long lines as written
"""Pairwise particle loops: energies with double loops over particles, and a small leapfrog run."""

import numpy as np

from benchmarks.corpus.program import Program


def nbody_energy(pos, mass):
    n = pos.shape[0]
    e = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            r = np.sqrt(np.sum(d * d) + 0.01)
            e = e - mass[i] * mass[j] / r
    return e


def lennard_jones(pos):
    n = pos.shape[0]
    total = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            dx = pos[i, 0] - pos[j, 0]
            dy = pos[i, 1] - pos[j, 1]
            dz = pos[i, 2] - pos[j, 2]
            r2 = dx * dx + dy * dy + dz * dz
            inv6 = 1.0 / r2**3
            total += 4.0 * (inv6 * inv6 - inv6)
    return total


def coulomb_rows(pos, q):
    energy = 0.0
    for i in range(pos.shape[0]):
        d = pos - pos[i]
        r2 = np.sum(d**2, axis=1) + 0.05
        energy += q[i] * np.sum(q / np.sqrt(r2))
    return 0.5 * energy


def spring_network(pos, rest, edges):
    e = 0.0
    for k in range(edges.shape[0]):
        i = edges[k, 0]
        j = edges[k, 1]
        length = np.linalg.norm(pos[i] - pos[j])
        e += (length - rest[k]) ** 2
    return 0.5 * e


def nbody_leapfrog(pos, vel, mass):
    dt = 0.01
    x = pos
    v = vel
    for step in range(25):
        diff = x[:, None, :] - x[None, :, :]
        r2 = np.sum(diff**2, axis=-1) + 0.05
        inv_r3 = r2 ** (-1.5)
        acc = -np.sum(diff * (mass[None, :] * inv_r3)[:, :, None], axis=1)
        v = v + dt * acc
        x = x + dt * v
    kinetic = 0.5 * np.sum(mass[:, None] * v * v)
    return kinetic + np.sum(x[:, 0])


def _nbody_inputs():
    r = np.random.default_rng(10)
    return (r.standard_normal((24, 3)), r.uniform(0.5, 1.5, 24))


def _lj_inputs():
    # a slightly jittered cubic lattice: no two particles too close
    g = np.arange(3) * 1.2
    lattice = np.array([(a, b, c) for a in g for b in g for c in g])[:18]
    return (lattice + 0.05 * np.random.default_rng(11).standard_normal(lattice.shape),)


def _coulomb_inputs():
    r = np.random.default_rng(12)
    return (r.standard_normal((200, 3)), r.choice([-1.0, 1.0], 200) * r.uniform(0.5, 1.0, 200))


def _spring_inputs():
    m = 10
    pts = np.array([(i, j) for i in range(m) for j in range(m)], dtype=float)
    edges = [(i * m + j, i * m + j + 1) for i in range(m) for j in range(m - 1)]
    edges += [(i * m + j, (i + 1) * m + j) for i in range(m - 1) for j in range(m)]
    edges = np.array(edges)
    r = np.random.default_rng(13)
    return (pts + 0.1 * r.standard_normal(pts.shape), 1.0 + 0.05 * r.standard_normal(len(edges)), edges)


def _leapfrog_inputs():
    r = np.random.default_rng(14)
    return (r.standard_normal((16, 3)), 0.1 * r.standard_normal((16, 3)), r.uniform(0.5, 1.5, 16))


PROGRAMS = [
    Program("nbody_energy", "physics", nbody_energy, _nbody_inputs, (0, 1),
            "softened gravitational energy, double loop over 24 particles, np.sum(d * d)"),
    Program("lennard_jones", "physics", lennard_jones, _lj_inputs, (0,),
            "Lennard-Jones energy of 18 atoms, double loop on scalar components pos[i, 0]"),
    Program("coulomb_rows", "physics", coulomb_rows, _coulomb_inputs, (0, 1),
            "Coulomb energy, loop over 200 particles, vectorized over the others (d**2)"),
    Program("spring_network", "physics", spring_network, _spring_inputs, (0, 1),
            "10x10 spring grid, loop over 180 edges with np.linalg.norm"),
    Program("nbody_leapfrog", "physics", nbody_leapfrog, _leapfrog_inputs, (0, 1, 2),
            "16 bodies, 25 leapfrog steps, broadcasting with None indexing"),
]
