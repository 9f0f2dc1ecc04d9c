#!/usr/bin/env bash
# make bench: every benchmark, one after the other, each printing its own
# figures with the peer measured in the same run.
#   format.sh          open and verify of a 1 GiB index vs xxhsum / sha256sum
#   ir-eval.sh         BM25 quality on SciFact, Cranfield, CISI (eval.py)
#   indexer-bench.sh   end-to-end build on the Debian-docs corpus vs SQLite
#                      FTS5 and Xapian omindex (SAGE_BENCH_INDEXER=0 skips it;
#                      it downloads and unpacks the corpus on first use)
#   search-bench.sh    search on the same corpus: libsage vs Xapian in process,
#                      sage-searchd vs Sphinx searchd over the network (1 and 16
#                      clients, wrk), hot-swap pauses (SAGE_BENCH_SEARCH=0 skips it)
#   startup.sh         sage-searchd exec to ready and to a first answer, indexes of
#                      64 MB to 1 GB, with and without a verification stamp
#                      (SAGE_BENCH_STARTUP=0 skips it; the corpora are built once)
#   embed-bench.sh     the embedding client's throughput against the fake GPU
#                      server with 50 ms latency, as a fraction of the ideal
#   dense-bench.sh     exact dense search (int8 scan, f32 rescoring) vs numpy and
#                      FAISS IndexFlatIP, N = 100k and 1M, d = 384 and 768, and the
#                      scan's bytes/s against the memory bandwidth (QUICK=1: only
#                      100k x 384; SAGE_BENCH_DENSE=0 skips it)
#   hnsw-bench.sh      approximate dense search (HNSW) vs hnswlib: build time,
#                      q/s and recall@10 per ef, 100k and 1M vectors of 384
#                      dimensions (QUICK=1: 100k only; SAGE_BENCH_HNSW=0 skips it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SAGE_BUILD:?set SAGE_BUILD to the build directory (make bench does)}"
# part TITLE SCRIPT [SKIP-VARIABLE]: runs one benchmark script under a
# heading, unless SKIP-VARIABLE is set to 0.
part() {
    if [ -n "${3:-}" ] && [ "${!3:-1}" = 0 ]; then
        return 0
    fi
    echo
    echo "#### $1"
    bash "$here/$2"
}

part format format.sh
part "search quality" ir-eval.sh
part "indexer, end to end" indexer-bench.sh SAGE_BENCH_INDEXER
part search search-bench.sh SAGE_BENCH_SEARCH
part "searchd start-up" startup.sh SAGE_BENCH_STARTUP
part "remote embedding client" embed-bench.sh
part "dense search, exact" dense-bench.sh SAGE_BENCH_DENSE
part "approximate dense search (HNSW)" hnsw-bench.sh SAGE_BENCH_HNSW
part "scale: cost vs corpus size" scale-bench.sh SAGE_BENCH_SCALE
