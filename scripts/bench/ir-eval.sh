#!/usr/bin/env bash
# Search quality: indexes each IR test collection of ../shared/datasets
# (title and text together, one chunk per document, as the published "flat"
# BM25 baselines do), runs its queries with `sage-indexer query --trec`, and
# scores the run with the collection's eval.py (nDCG@10, Recall@100, MRR@10).
#   SAGE_BUILD=build bash scripts/bench/ir-eval.sh [scifact cranfield cisi]
# Dense and hybrid (the code path searchd uses) with SAGE_EVAL_MODES, e.g.
#   SAGE_EVAL_MODES="bm25 dense hybrid hybrid-convex" bash scripts/bench/ir-eval.sh scifact
# The index is then built with embeddings from SAGE_EVAL_EMBED_URL (and
# SAGE_EVAL_EMBED_MODEL, SAGE_EVAL_EMBED_QUERY_PREFIX, SAGE_EVAL_EMBED_DOC_PREFIX),
# or, without one, from the fake server of the tests (tests/lib/fakegpu.py,
# hashed character 3-grams, SAGE_EVAL_EMBED_DIM dimensions, 127.0.0.1 only):
# its dense figures measure nothing about quality, only that the path works.
# The peers, on the same collections and scored by the same eval.py: Xapian
# (BM25Weight, English stemmer, SAGE's stop words) and SQLite FTS5 (bm25(),
# porter tokenizer, OR of the query's words), top 1000 each (ir-peers.py).
# Figures are recorded through fig.py in $SAGE_BUILD/bench/figures/ir-eval.json
# (QUICK=1 changes nothing: the three collections take seconds).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/await.sh
. "$top/scripts/lib/await.sh"
bin=${SAGE_BUILD:-$top/build}
data=${SAGE_DATASETS:-$top/../shared/datasets}
modes=${SAGE_EVAL_MODES:-bm25}
work=$(mktemp -d "${TMPDIR:-/tmp}/sage-ir.XXXXXX")
fg_pid=''
cleanup() {
    if [ -n "$fg_pid" ]; then
        kill "$fg_pid" 2>/dev/null || true
        wait "$fg_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
sets=${*:-scifact cranfield cisi}
PY=/usr/bin/python3     # Debian's: python3-xapian, sqlite3 with FTS5
figs=$bin/bench/figures/ir-eval.json
fig() { "$PY" "$here/fig.py" "$@"; }
rm -f "$figs"
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
fig title "$figs" "Search quality (IR test collections)"
fig meta "$figs" command "SAGE_BUILD=$bin SAGE_EVAL_MODES='$modes' bash scripts/bench/ir-eval.sh $sets"
fig meta "$figs" collections "$sets ($data; title and text as one chunk per document; top 1000 per query)"
fig meta "$figs" scoring "$data/eval.py (trec_eval definitions): nDCG@10, Recall@100, MRR@10"
fig meta "$figs" versions "python3-xapian $(ver python3-xapian), sqlite3 $("$PY" -c 'import sqlite3; print(sqlite3.sqlite_version)') (python3 $(ver python3))"
fig meta "$figs" peers "xapian: BM25Weight(1.2, 0.75), English stemmer, SAGE's stop words, OR of the terms; fts5: bm25(), porter unicode61, OR of the quoted words"
stopwords=()
if [ -x "$bin/bench/search_bench" ]; then
    "$bin/bench/search_bench" stopwords >"$work/stopwords.txt"
    stopwords=("$work/stopwords.txt")
else
    fig note "$figs" "Xapian ran without SAGE's stop words ($bin/bench/search_bench not built)"
fi
# record SET MODE ENGINE EVAL-FILE: the collection's figures of one run.
record() {
    local s=$1 m=$2 e=$3 f=$4 sfx=
    [ "$m" = bm25 ] || sfx=-$m
    local what="$s ($n_docs docs), $m"
    [ "$m" = bm25 ] || what+=" (SAGE_EVAL_MODES)"
    fig add "$figs" "ndcg10-$s$sfx" "$e" "$(awk '$1 == "ndcg_cut_10" {print $3}' "$f")" \
        --unit nDCG@10 --better higher --what "nDCG@10 on $what, eval.py"
    fig add "$figs" "recall100-$s$sfx" "$e" "$(awk '$1 == "recall_100" {print $3}' "$f")" \
        --unit Recall@100 --better higher --what "Recall@100 on $what, eval.py"
    fig add "$figs" "mrr10-$s$sfx" "$e" "$(awk '$1 == "mrr_10" {print $3}' "$f")" \
        --unit MRR@10 --better higher --what "MRR@10 on $what, eval.py"
}

embed_flags=()
url=${SAGE_EVAL_EMBED_URL:-}
if [ "$modes" != bm25 ]; then
    if [ -z "$url" ]; then
        python3 "$top/tests/lib/fakegpu.py" --port-file "$work/fg.port" --dim "${SAGE_EVAL_EMBED_DIM:-384}" \
            --idle-timeout 600 >"$work/fg.log" 2>&1 &
        fg_pid=$!
        await_port "$work/fg.port" "$fg_pid" "$work/fg.log" 10 ||
            { echo "the fake embedding server did not start"; exit 1; }
        url="http://127.0.0.1:$(cat "$work/fg.port")"
        echo "note: dense vectors from the FAKE embedder (hashed character 3-grams): its dense"
        echo "      and hybrid figures say nothing about quality, only that the code path a real"
        echo "      embedder takes works end to end (set SAGE_EVAL_EMBED_URL for a real one)"
    fi
    embed_flags=(--embed-url "$url" --embed-model "${SAGE_EVAL_EMBED_MODEL:-fake}")
    [ -n "${SAGE_EVAL_EMBED_QUERY_PREFIX:-}" ] &&
        embed_flags+=(--embed-query-prefix "$SAGE_EVAL_EMBED_QUERY_PREFIX")
    [ -n "${SAGE_EVAL_EMBED_DOC_PREFIX:-}" ] &&
        embed_flags+=(--embed-doc-prefix "$SAGE_EVAL_EMBED_DOC_PREFIX")
fi

printf '%-10s %-14s %8s %10s %8s %9s %9s\n' collection mode docs ndcg@10 r@100 mrr@10 build_s
for s in $sets; do
    d=$data/$s
    mkdir -p "$work/$s"
    if [ -f "$d/docs.jsonl.zst" ]; then
        zstd -q -dc "$d/docs.jsonl.zst" > "$work/$s/docs.jsonl"
    else
        cp "$d/docs.jsonl" "$work/$s/docs.jsonl"
    fi
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086  # extra flags, split on purpose
    "$bin/sage-indexer" build --out "$work/$s/idx.sage" --chunk-size 1G --max-chunk 1G \
        --chunk-overlap 0 "${embed_flags[@]}" ${SAGE_EVAL_BUILD_FLAGS:-} "$work/$s/docs.jsonl" \
        2> "$work/$s/build.log"
    t1=$(date +%s.%N)
    n_docs=$("$bin/sage-indexer" info --json "$work/$s/idx.sage" | jq .counts.documents)
    for m in $modes; do
        # hybrid-convex: the convex fusion; hybrid: reciprocal rank fusion
        qflags=(--mode "${m%-convex}")
        [ "$m" = hybrid-convex ] && qflags+=(--fusion convex)
        [ "$m" != bm25 ] && qflags+=(--embed-url "$url")
        "$bin/sage-indexer" query -k 1000 "${qflags[@]}" --trec "$d/queries.jsonl" \
            "$work/$s/idx.sage" > "$work/$s/run-$m.txt"
        python3 "$data/eval.py" "$d/qrels.tsv" "$work/$s/run-$m.txt" > "$work/$s/eval-$m.txt"
        get() { awk -v m="$1" '$1 == m {print $3}' "$work/$s/eval-$m.txt"; }
        printf '%-10s %-14s %8s %10s %8s %9s %9.2f\n' "$s" "$m" "$n_docs" \
            "$(get ndcg_cut_10)" "$(get recall_100)" "$(get mrr_10)" "$(echo "$t1 - $t0" | bc)"
        record "$s" "$m" sage "$work/$s/eval-$m.txt"
    done
    # the peers, BM25 only
    for e in xapian fts5; do
        extra=()
        [ "$e" = xapian ] && extra=("${stopwords[@]}")
        "$PY" "$here/ir-peers.py" "$e" "$work/$s/docs.jsonl" "$d/queries.jsonl" "$work/$s/run-$e.txt" \
            "${extra[@]}" >"$work/$s/peer-$e.json"
        python3 "$data/eval.py" "$d/qrels.tsv" "$work/$s/run-$e.txt" > "$work/$s/eval-$e.txt"
        get() { awk -v m="$1" '$1 == m {print $3}' "$work/$s/eval-$e.txt"; }
        printf '%-10s %-14s %8s %10s %8s %9s %9.2f\n' "$s" "bm25/$e" "$n_docs" \
            "$(get ndcg_cut_10)" "$(get recall_100)" "$(get mrr_10)" "$(jq .index_s "$work/$s/peer-$e.json")"
        record "$s" bm25 "$e" "$work/$s/eval-$e.txt"
    done
done
echo "bm25/xapian, bm25/fts5: the same collection and eval.py, Xapian and SQLite FTS5 (ir-peers.py);"
echo "their build_s is the in-memory index build alone"
