"""The peers of scripts/bench/dense-bench.sh: exact inner-product top 10, one
query per call, over the files dense_bench gen wrote.

    dense-bench.py DIR N DIM NQ REPS

numpy: X @ q, argpartition for the top 10, a sort of those 10 (BLAS threads
as OPENBLAS_NUM_THREADS sets them); FAISS: IndexFlatIP.search with one query
(threads as OMP_NUM_THREADS sets them). A warm-up, then REPS timed passes, the
best kept; one JSON line per engine, like dense_bench run's.
"""
import json
import sys
import time

import numpy as np


def recall(found, truth):
    return sum(len(set(f) & set(t)) for f, t in zip(found, truth)) / truth.size


def bench(name, search, queries, truth, reps, n, dim):
    warm = min(len(queries), 20)
    for q in queries[:warm]:
        search(q)
    best, found = float("inf"), []
    for _ in range(reps):
        found = []
        t0 = time.perf_counter()
        for q in queries:
            found.append(search(q))
        best = min(best, time.perf_counter() - t0)
    qps = len(queries) / best
    print(json.dumps({"engine": name, "n": n, "dim": dim, "queries": len(queries),
                      "qps": round(qps, 2), "ms": round(1e3 / qps, 4),
                      "recall": round(recall(found, truth), 4),
                      "scan_gbs": round(qps * n * dim * 4 / 1e9, 3)}), flush=True)


def main():
    d, n, dim, nq, reps = sys.argv[1], *map(int, sys.argv[2:6])
    x = np.fromfile(f"{d}/base.f32", dtype=np.float32).reshape(n, dim)
    queries = np.fromfile(f"{d}/queries.f32", dtype=np.float32).reshape(-1, dim)[:nq]
    truth = np.fromfile(f"{d}/truth.u32", dtype=np.uint32).reshape(-1, 10)[:nq]

    def numpy_top(q):
        s = x @ q
        top = np.argpartition(-s, 10)[:10]
        return top[np.argsort(-s[top], kind="stable")]

    bench("numpy", numpy_top, queries, truth, reps, n, dim)

    import faiss
    index = faiss.IndexFlatIP(dim)
    index.add(x)
    del x

    def faiss_top(q):
        return index.search(q.reshape(1, -1), 10)[1][0]

    bench("faiss", faiss_top, queries, truth, reps, n, dim)


if __name__ == "__main__":
    main()
