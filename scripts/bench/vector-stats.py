#!/usr/bin/env python3
"""How hard a set of vectors is for nearest-neighbour search, by two figures
that do not depend on the dimension or the library:

  vector-stats.py FILE.f32 DIM [QUERIES]

FILE.f32 holds rows of DIM little-endian floats (hnsw_bench gen writes
base.f32; hnsw_bench dump INDEX OUT writes the vectors of any index, such as
the real sentence-encoder vectors of scripts/bench/quality.sh). The rows are
normalized; QUERIES of them (default 500, a fixed sample) are set against all
rows, themselves left out, by Euclidean distance on the unit sphere (what
inner product ranks). Prints one line:

  n=N dim=DIM lid=MEAN lid_median=MEDIAN rc=RC d10_d1=RATIO

lid: the local intrinsic dimension, the maximum-likelihood estimate of
Levina and Bickel over the 20 nearest neighbours (mean and median over the
sample): the dimension the data locally spreads in. rc: the relative
contrast, the median over the sample of the mean distance over the distance
to the 10th neighbour: how far the neighbours stand out of the crowd.
d10_d1: the median of the 10th neighbour's distance over the first's. A
higher LID and a lower contrast make a graph search miss more neighbours at
the same ef.
"""
import sys

import numpy as np


def stats(x, queries=500, k=20, seed=0):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(queries, len(x)), replace=False)
    lids, rcs, spread = [], [], []
    for s in range(0, len(pick), 100):
        rows = pick[s:s + 100]
        d2 = np.maximum(2.0 - 2.0 * (x[rows] @ x.T), 0.0)
        d2[np.arange(len(rows)), rows] = np.inf        # not its own neighbour
        near = np.sqrt(np.sort(np.partition(d2, k, axis=1)[:, :k], axis=1))
        near = np.maximum(near, 1e-12)
        lids.extend(-1.0 / np.mean(np.log(near[:, :-1] / near[:, -1:]), axis=1))
        d2[np.arange(len(rows)), rows] = 0.0
        mean = np.sqrt(d2).sum(axis=1) / (len(x) - 1)
        rcs.extend(mean / near[:, 9])
        spread.extend(near[:, 9] / near[:, 0])
    return (len(x), float(np.mean(lids)), float(np.median(lids)), float(np.median(rcs)),
            float(np.median(spread)))


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    dim = int(argv[2])
    x = np.fromfile(argv[1], dtype="<f4")
    if dim <= 0 or x.size % dim or x.size < 22 * dim:
        print("vector-stats: %s does not hold at least 22 rows of %d floats" % (argv[1], dim),
              file=sys.stderr)
        return 1
    n, lid, lid_med, rc, spread = stats(x.reshape(-1, dim), int(argv[3]) if len(argv) == 4 else 500)
    print("n=%d dim=%d lid=%.1f lid_median=%.1f rc=%.3f d10_d1=%.3f" % (n, dim, lid, lid_med, rc,
                                                                        spread))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
