#!/usr/bin/env bash
# Search quality: indexes each IR test collection of ../shared/datasets
# (title and text together, one chunk per document, as the published "flat"
# BM25 baselines do), runs its queries with `sage-indexer query --trec`, and
# scores the run with the collection's eval.py (nDCG@10, Recall@100, MRR@10).
#   SAGE_BUILD=build bash scripts/bench/ir-eval.sh [scifact cranfield cisi]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SAGE_BUILD:-$top/build}
data=${SAGE_DATASETS:-$top/../shared/datasets}
work=$(mktemp -d "${TMPDIR:-/tmp}/sage-ir.XXXXXX")
trap 'rm -rf "$work"' EXIT
sets=${*:-scifact cranfield cisi}
printf '%-10s %8s %10s %8s %9s %9s\n' collection docs ndcg@10 r@100 mrr@10 build_s
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
        --chunk-overlap 0 ${SAGE_EVAL_BUILD_FLAGS:-} "$work/$s/docs.jsonl" 2> "$work/$s/build.log"
    t1=$(date +%s.%N)
    "$bin/sage-indexer" query -k 1000 --trec "$d/queries.jsonl" "$work/$s/idx.sage" > "$work/$s/run.txt"
    python3 "$data/eval.py" "$d/qrels.tsv" "$work/$s/run.txt" > "$work/$s/eval.txt"
    get() { awk -v m="$1" '$1 == m {print $3}' "$work/$s/eval.txt"; }
    printf '%-10s %8s %10s %8s %9s %9.2f\n' "$s" \
        "$("$bin/sage-indexer" info --json "$work/$s/idx.sage" | jq .counts.documents)" \
        "$(get ndcg_cut_10)" "$(get recall_100)" "$(get mrr_10)" "$(echo "$t1 - $t0" | bc)"
done
