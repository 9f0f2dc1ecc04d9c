#!/usr/bin/env bash
# The benchmark report machinery (scripts/bench/fig.py, report.py, run.sh) on
# figures made up here, so that `make bench` cannot silently lose a table, a
# plot or a "behind" line: the numbers are fixtures, the code is the real one.
. "$SAGE_TOP/tests/lib/tap.sh"
PY=/usr/bin/python3
FIG="$PY $SAGE_TOP/scripts/bench/fig.py"
REPORT="$PY $SAGE_TOP/scripts/bench/report.py"

# fixtures BUILD: one part with a peer ahead, one behind, one on par; scale
# results for two sizes; HNSW and exact points.
fixtures() {
    local b=$1 f=$1/bench/figures/indexer-bench.json
    mkdir -p "$b/bench/figures"
    ln -sf "$SAGE_BUILD/sage-indexer" "$b/sage-indexer"
    $FIG title "$f" "indexer, end to end" &&
    $FIG meta "$f" corpus "fixture corpus" &&
    $FIG add "$f" wall sage 30 32 31 --what "indexing wall time" --unit s --better lower &&
    $FIG add "$f" wall fts5 60 61 &&
    $FIG add "$f" wall xapian 20 &&
    $FIG add "$f" size sage 100 --what "index size" --unit MB --better lower &&
    $FIG add "$f" size xapian 105 &&
    $FIG note "$f" "a fixture note" || return 1
    echo '{"part":"indexer-bench","title":"indexer, end to end","status":"ok","seconds":61.5}' >"$b/bench/run.jsonl"
    cat >"$b/bench/scale-bench.json" <<'EOF'
{"results": [
 {"engine": "sage", "n": 10000, "index": {"wall_s": 1, "chunks_s": 10000, "rss_kb": 51200, "size_bytes": 3000000},
  "query": {"qps": 5000, "p50_ms": 0.1, "p99_ms": 0.5}},
 {"engine": "sage", "n": 100000, "index": {"wall_s": 8, "chunks_s": 12500, "rss_kb": 92160, "size_bytes": 30000000},
  "query": {"qps": 2000, "p50_ms": 0.4, "p99_ms": 2}},
 {"engine": "xapian", "n": 10000, "index": {"wall_s": 3, "chunks_s": 3333, "rss_kb": 40960, "size_bytes": 5000000},
  "query": {"qps": 3000, "p50_ms": 0.2, "p99_ms": 0.4}}],
 "skipped": [{"engine": "xapian", "n": 100000, "reason": "projected 900 s > budget 300 s"}]}
EOF
    printf '%s\n' '{"engine":"sage","n":20000,"dim":384,"ef":16,"qps":9000,"recall":0.8}' \
        '{"engine":"sage","n":20000,"dim":384,"ef":64,"qps":4000,"recall":0.97}' \
        '{"engine":"hnswlib","n":20000,"dim":384,"ef":16,"qps":4000,"recall":0.8}' >"$b/bench/hnsw-points.jsonl"
    printf '%s\n' '{"engine":"sage","n":100000,"dim":384,"qps":600,"recall":1.0}' >"$b/bench/dense-points.jsonl"
}

t_ok 'fig.py keeps every repetition per engine, refuses what is not a number' '
    $FIG add f.json q sage 1 2 --what "a figure" --unit s --better lower &&
    $FIG add f.json q sage 3 --what "ignored later description" &&
    $FIG add f.json q peer 4 &&
    jq -e ".figures[0] | .what == \"a figure\" and .unit == \"s\" and (.values.sage | length) == 3 and .values.peer == [4]" f.json &&
    ! $FIG add f.json q sage nan 2>err && grep -q "not a finite number" err &&
    ! $FIG add f.json q sage abc 2>/dev/null &&
    ! $FIG add f.json q sage 1 --better faster 2>err && grep -q "lower or higher" err &&
    jq -e "(.figures[0].values.sage | length) == 3" f.json'

t_ok 'report: tables with medians and spread, the factor against each peer, notes' '
    fixtures b && $REPORT --build b --out out --quick 0 --causes /dev/null >log &&
    md=out/BENCHMARKS.md &&
    grep -F "| indexing wall time | s | 31.0 (30.0–32.0) | 60.5 (60.0–61.0) — SAGE 1.95× better | 20.0 — SAGE 1.55× behind |" $md &&
    grep -F "| index size | MB | 100 | – | 105 — SAGE on par |" $md &&
    grep -F -- "- corpus: fixture corpus" $md && grep -F -- "- a fixture note" $md &&
    grep -F "| indexer, end to end | ok | 1.0 |" $md && ! grep -q "QUICK run" $md'

t_ok 'report: every figure where a peer is ahead is listed first, under its cause' '
    fixtures b && printf "{\"indexer-bench:wal*\": \"omindex skips what it cannot parse\"}" >causes.json &&
    $REPORT --build b --out out --quick 1 --causes causes.json >log &&
    md=out/BENCHMARKS.md &&
    sed -n "/^## Where SAGE is behind/,/^## /p" $md >behind &&
    grep -A1 -F -- "- Cause: omindex skips what it cannot parse" behind | tail -n 1 >first &&
    grep -F "  - **indexing wall time** (indexer-bench): Xapian is 1.55× better" first &&
    grep -A2 -F -- "- Cause: cause not profiled yet" behind >rest &&
    grep -F "  - **indexing peak RSS (MB) at 10,000 chunks** (scale-bench): Xapian is 1.25× better" rest &&
    [ "$(grep -c "^- Cause: " behind)" = 2 ] && [ "$(grep -c "^  - \*\*" behind)" = 3 ] &&
    grep -q "QUICK run" $md'

t_ok 'report: the scale tables, skipped sizes with their reason, three PNG plots' '
    fixtures b && $REPORT --build b --out out --causes /dev/null >log &&
    md=out/BENCHMARKS.md &&
    grep -F "| 10,000 | 10,000 | 3,333 (SAGE 3.00× better) |" $md &&
    grep -F "| 100,000 | 12,500 | – |" $md &&
    grep -F -- "- Xapian at 100,000 chunks not run: projected 900 s > budget 300 s" $md &&
    for p in scale-query-latency scale-index-throughput dense-qps-recall; do
        grep -F "(bench/plots/$p.png)" $md &&
        [ "$(head -c 8 out/bench/plots/$p.png | od -An -tx1 | tr -d " \n")" = 89504e470d0a1a0a ] || exit 1
    done && [ -z "$(ls out/bench/plots | grep -v "\.png$")" ]'

t_ok 'report: the results JSON holds the machine, the versions and every raw value' '
    fixtures b && $REPORT --build b --out out --started 2026-01-02T03:04:05Z --causes /dev/null >log &&
    r=out/bench/results/2026-01-02.json &&
    jq -e ".machine.cores >= 1 and (.versions.sage | startswith(\"sage-indexer\"))" $r &&
    jq -e ".figures[\"indexer-bench\"].figures[0].values.sage == [30, 32, 31]" $r &&
    jq -e "[.behind[] | .peer] == [\"xapian\", \"xapian\", \"xapian\"]" $r &&
    jq -e ".scale.skipped[0].n == 100000 and (.hnsw_points | length) == 3" $r'

t_ok 'search-bench.py swap-windows: a pause stands out against the steady max of as many requests' '
    $PY -c "
for i in range(20000):        # 20 s at 1000 requests a second, 1 to 3 ms
    t = 1000.0 + i / 1000
    ms = 40.0 if 5.2 <= t - 1000 < 5.201 else 1 + (i * 7919 % 2000) / 1000
    print(\"%.6f %.3f\" % (t, ms))" >tl &&
    printf "1 1005.0 1005.05 0\n2 1012.0 1012.04 0\n3 1016.0 1016.1 1\n" >swaps &&
    $PY "$SAGE_TOP/scripts/bench/search-bench.py" swap-windows tl swaps res 1000 8 sage &&
    jq -s -e "length == 4 and .[0].n == 1 and .[0].max_ms == 40 and .[0].pause > 13 and
        .[0].requests == 2001 and .[1].pause <= 1.0 and .[1].swap_ms == 40 and
        .[2].swap_ok == false and
        (.[0].steady_max_ms >= 2.9 and .[0].steady_max_ms <= 3.0) and
        .[3].kind == \"steady\" and .[3].engine == \"sage\" and .[3].requests == 13997" res'

t_ok 'run.sh: parts skipped by their variable are reported as skipped, the run still reports' '
    mkdir -p b && ln -s "$SAGE_BUILD/sage-indexer" b/sage-indexer &&
    env SAGE_BUILD="$PWD/b" SAGE_BENCH_OUT="$PWD/out" QUICK=1 SAGE_BENCH_FORMAT=0 SAGE_BENCH_IREVAL=0 \
        SAGE_BENCH_INDEXER=0 SAGE_BENCH_SEARCH=0 SAGE_BENCH_SCALE=0 SAGE_BENCH_STARTUP=0 \
        SAGE_BENCH_EMBED=0 SAGE_BENCH_DENSE=0 SAGE_BENCH_HNSW=0 \
        bash "$SAGE_TOP/scripts/bench/run.sh" >log 2>&1 &&
    grep -F "| search | skipped (SAGE_BENCH_SEARCH=0) | – |" out/BENCHMARKS.md &&
    grep -F "| hybrid search quality with a real sentence encoder | skipped (SAGE_BENCH_QUALITY=0) | – |" out/BENCHMARKS.md &&
    ! env SAGE_BUILD="$PWD/b" QUICK=2 bash "$SAGE_TOP/scripts/bench/run.sh" 2>err && grep -q "QUICK is 0 or 1" err'

t_done
