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
echo "#### format"
bash "$here/format.sh"
echo
echo "#### search quality"
bash "$here/ir-eval.sh"
if [ "${SAGE_BENCH_INDEXER:-1}" != 0 ]; then
    echo
    echo "#### indexer, end to end"
    bash "$here/indexer-bench.sh"
fi
if [ "${SAGE_BENCH_SEARCH:-1}" != 0 ]; then
    echo
    echo "#### search"
    bash "$here/search-bench.sh"
fi
if [ "${SAGE_BENCH_STARTUP:-1}" != 0 ]; then
    echo
    echo "#### searchd start-up"
    bash "$here/startup.sh"
fi
echo
echo "#### remote embedding client"
bash "$here/embed-bench.sh"
if [ "${SAGE_BENCH_DENSE:-1}" != 0 ]; then
    echo
    echo "#### dense search, exact"
    bash "$here/dense-bench.sh"
fi
if [ "${SAGE_BENCH_HNSW:-1}" != 0 ]; then
    echo
    echo "#### approximate dense search (HNSW)"
    bash "$here/hnsw-bench.sh"
fi
