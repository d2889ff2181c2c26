"""`python -m tests.srcgrad.fuzz --programs 10000 --workers 2` (what `make fuzz` runs).

Prints `N programs, W wrong, C crash, R refused`, the refusals grouped by reason, and for every wrong or
crash its seed and the path of a saved reproducer (a runnable .py file); the first program of each kind of
failure is also shrunk, and its minimized reproducer is named. `--seed S` runs one program and shows it.
Exit status 1 when anything is wrong or crashed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

from .runner import failure_key, minimize, run_seed, save, summarize


def _work(args: tuple) -> tuple:
    seed, timeout = args
    p, o = run_seed(seed, timeout)
    return seed, p, o


def _shrink(args: tuple) -> tuple | None:
    seed, timeout, budget, out_dir = args
    try:
        p, o = run_seed(seed, timeout)
        mp, mo = minimize(p, o, budget)
        path = save(Path(out_dir), mp, mo, "_min", " (minimized)")
    except Exception:  # noqa: BLE001 - shrinking is a convenience; the verdicts stand without it
        return None
    return failure_key(o), seed, str(path), mp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.srcgrad.fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0, help="first seed (seeds are start .. start+programs-1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="/tmp/srcgrad_fuzz", help="folder for reproducers")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per program")
    ap.add_argument("--minimize", type=float, default=60.0,
                    help="seconds spent shrinking the first program of each kind of failure (0: none)")
    ap.add_argument("--per-kind", type=int, default=1, help="programs shrunk per kind of failure")
    ap.add_argument("--seed", type=int, help="run this one seed and print its program and verdict")
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)  # overflow in a program's exp: its verdict says so
    out_dir = Path(a.out)

    if a.seed is not None:
        p, o = run_seed(a.seed, a.timeout)
        if p is None:
            print(f"seed {a.seed}: no valid program")
            return 0
        print(p.module_source())
        print(f"verdict: {o.signature()}  {o.reason}")
        print(o.detail)
        print(f"tape: {o.tape}; checked against finite differences: {o.fd_checked}")
        if o.status in ("wrong", "crash"):
            print("reproducer:", save(out_dir, p, o))
            if a.minimize:
                mp, mo = minimize(p, o, a.minimize)
                print("minimized:", save(out_dir, mp, mo, "_min", " (minimized)"))
                print(mp.module_source())
                print(mo.detail)
        return int(o.status in ("wrong", "crash"))

    seeds = range(a.start, a.start + a.programs)
    results, saved, tape_skips = [], {}, Counter()
    first_of: dict[str, list] = {}
    t0 = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    jobs = [(s, a.timeout) for s in seeds]
    with ctx.Pool(a.workers, maxtasksperchild=200) as pool:
        for k, (seed, p, o) in enumerate(pool.imap(_work, jobs, chunksize=4), 1):
            results.append((seed, o))
            if o is not None:
                if o.tape != "ok":
                    tape_skips[o.tape[len("skip: "):]] += 1
                if o.status in ("wrong", "crash"):
                    saved[seed] = save(out_dir, p, o)
                    first_of.setdefault(failure_key(o), []).append(seed)
            if k % 500 == 0 or k == len(jobs):
                c = Counter(x.status for _, x in results if x is not None)
                print(f"[{k}/{len(jobs)} in {time.monotonic() - t0:.0f} s] {c['wrong']} wrong, "
                      f"{c['crash']} crash, {c['refused']} refused", file=sys.stderr, flush=True)
        minimized = {}
        if a.minimize and first_of:
            print(f"shrinking {len(first_of)} kinds of failure ...", file=sys.stderr, flush=True)
            jobs = [(s, a.timeout, a.minimize, str(out_dir))
                    for ss in first_of.values() for s in ss[:a.per_kind]]
            for r in pool.imap_unordered(_shrink, jobs):
                if r is not None:
                    key, seed, path, mp = r
                    minimized.setdefault(key, []).append((seed, path, mp))
    print(summarize(results, minimized, saved, tape_skips))
    return int(any(o is not None and o.status in ("wrong", "crash") for _, o in results))


if __name__ == "__main__":
    sys.exit(main())
