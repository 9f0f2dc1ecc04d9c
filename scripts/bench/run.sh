#!/usr/bin/env bash
# make bench: every benchmark part, one after the other, each measuring SAGE
# and its peers in the same run and recording its figures through fig.py in
# $SAGE_BUILD/bench/figures/; then report.py turns the run into
# bench/results/DATE.json, BENCHMARKS.md and its plots (bench/plots/).
#
#   make bench              the full run (about 45 minutes on 2 cores once the
#                           corpora are built; see BENCHMARKS.md)
#   make bench QUICK=1      every part at a small size, under 5 minutes; its
#                           report goes to $SAGE_BUILD/bench/report/, the
#                           committed BENCHMARKS.md is left alone
#
# The parts (SAGE_BENCH_<NAME>=0 skips one, e.g. SAGE_BENCH_HNSW=0):
#   format.sh          open and verify of an index vs xxhsum / sha256sum
#   ir-eval.sh         BM25 quality on SciFact, Cranfield, CISI (eval.py),
#                      SAGE vs Xapian and SQLite FTS5
#   indexer-bench.sh   end-to-end build on the Debian-docs corpus vs SQLite
#                      FTS5 and Xapian omindex (the corpus is downloaded and
#                      unpacked on first use)
#   search-bench.sh    search on the same corpus: libsage vs Xapian in process,
#                      sage-searchd vs Sphinx searchd over the network, hot swap
#                      (sage-searchd's file swap vs Sphinx's seamless rotation)
#   scale-bench.sh     synthetic corpora of 10k to 3M chunks: indexing and query
#                      cost as the corpus grows, SAGE vs FTS5, Xapian, Sphinx
#   startup.sh         sage-searchd exec to ready and to a first answer, vs
#                      Sphinx searchd to its first answer
#   embed-bench.sh     the embedding client against the fake GPU server
#   dense-bench.sh     exact dense search vs numpy and FAISS IndexFlatIP, and
#                      the scan's share of the memory bandwidth
#   hnsw-bench.sh      HNSW vs hnswlib: build time, q/s against recall@10
#   quality.sh         nDCG@10 of BM25, dense and hybrid with a real sentence
#                      encoder (the local embedder); not in QUICK runs. Its
#                      indexes are kept in $SAGE_BUILD/bench/quality/: the first
#                      run embeds the three collections (about 20 minutes here)
#
# A part that fails is reported as failed (its log is in
# $SAGE_BUILD/bench/logs/) and the others still run; the exit status is 1
# when any part failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${SAGE_BUILD:?set SAGE_BUILD to the build directory (make bench does)}"
QUICK=${QUICK:-0}
export QUICK SAGE_BUILD
[[ $QUICK == 0 || $QUICK == 1 ]] || { echo "bench: QUICK is 0 or 1" >&2; exit 2; }

bench=$SAGE_BUILD/bench
rm -rf "$bench/figures" "$bench/logs"
rm -f "$bench/hnsw-points.jsonl" "$bench/dense-points.jsonl" "$bench/scale-bench.json"
mkdir -p "$bench/figures" "$bench/logs"

# shellcheck source=scripts/bench/common.sh
. "$here/common.sh"
command -v gnuplot >/dev/null || bench_need bench gnuplot-nox || exit 1

runlog=$bench/run.jsonl
: >"$runlog"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# the revision measured, taken now: the report rewrites tracked files
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    rev+=" (with uncommitted changes)"
fi
failed=0

# part NAME TITLE SCRIPT: runs one part under a heading unless
# SAGE_BENCH_<NAME>=0, its output shown and kept in logs/SCRIPT.log, and
# records its duration and status in run.jsonl.
part() {
    local var="SAGE_BENCH_$1" title=$2 script=$3 t0 t1 rc=0
    if [[ ${!var:-1} == 0 ]]; then
        printf '{"part":"%s","title":"%s","status":"skipped","why":"%s=0"}\n' \
            "${script%.sh}" "$title" "$var" >>"$runlog"
        return 0
    fi
    echo
    echo "#### $title"
    t0=$(date +%s.%N)
    bash "$here/$script" 2>&1 | tee "$bench/logs/${script%.sh}.log" || rc=$?
    t1=$(date +%s.%N)
    if ((rc != 0)); then
        failed=1
        echo "bench: $script failed (status $rc); its log: $bench/logs/${script%.sh}.log" >&2
    fi
    awk -v p="${script%.sh}" -v t="$title" -v a="$t0" -v b="$t1" -v rc="$rc" 'BEGIN {
        printf "{\"part\":\"%s\",\"title\":\"%s\",\"status\":\"%s\",\"seconds\":%.1f}\n",
            p, t, rc == 0 ? "ok" : "failed (status " rc ")", b - a }' >>"$runlog"
}

part FORMAT "index format: open and verify" format.sh
part IREVAL "search quality, BM25" ir-eval.sh
part INDEXER "indexer, end to end" indexer-bench.sh
part SEARCH "search" search-bench.sh
part SCALE "growing corpora" scale-bench.sh
part STARTUP "searchd start-up" startup.sh
part EMBED "remote embedding client" embed-bench.sh
part DENSE "dense search, exact" dense-bench.sh
part HNSW "approximate dense search (HNSW)" hnsw-bench.sh
if [[ $QUICK == 1 ]]; then
    SAGE_BENCH_QUALITY=${SAGE_BENCH_QUALITY:-0}
fi
part QUALITY "hybrid search quality with a real sentence encoder" quality.sh

if [[ $QUICK == 1 ]]; then
    out=${SAGE_BENCH_OUT:-$bench/report}
else
    out=${SAGE_BENCH_OUT:-$repo}
fi
echo
echo "#### report"
/usr/bin/python3 "$here/report.py" --build "$SAGE_BUILD" --out "$out" --started "$started" \
    --finished "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --git "$rev" --quick "$QUICK" || failed=1
exit "$failed"
