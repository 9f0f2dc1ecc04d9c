#!/usr/bin/env bash
# Search quality with a real sentence encoder: the local embedder
# (scripts/embedder, Universal Sentence Encoder Lite, 512-d) embeds each IR
# collection of ../shared/datasets; nDCG@10 and Recall@100 (their eval.py)
# for BM25, dense, and hybrid with reciprocal rank fusion and with the convex
# combination. Fusion weights are chosen on CISI and Cranfield (the best mean
# nDCG@10 of the two over a small grid) and then applied unchanged to SciFact:
# no tuning on the collection reported.
#   SAGE_BUILD=build bash scripts/bench/quality.sh
# Indexes are kept in $SAGE_BUILD/bench/quality/ (rebuilt when missing); the
# table goes to stdout and JSON lines to $SAGE_BUILD/bench/quality.json.
# Also reports the embedding throughput of the whole path (indexer -> server).
# The figures (the chosen fusion settings only) are recorded through fig.py in
# $SAGE_BUILD/bench/figures/quality.json.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/await.sh
. "$top/scripts/lib/await.sh"
bin=${SAGE_BUILD:-$top/build}
data=${SAGE_DATASETS:-$top/../shared/datasets}
cache=$bin/bench/quality
out_json=$bin/bench/quality.json
model=universal-sentence-encoder-lite
PY=/usr/bin/python3
mkdir -p "$cache"
: >"$out_json"
figs=$bin/bench/figures/quality.json
fig() { "$PY" "$here/fig.py" "$@"; }
rm -f "$figs"
fig title "$figs" "Search quality with a sentence encoder: BM25, dense, hybrid"
fig meta "$figs" command "SAGE_BUILD=$bin bash scripts/bench/quality.sh"
fig meta "$figs" settings "embedder $model (scripts/embedder); fusion weights chosen on CISI and Cranfield (best mean nDCG@10), applied unchanged to SciFact; eval.py of $data"

work=$(mktemp -d "${TMPDIR:-/tmp}/sage-quality.XXXXXX")
emb_pid=''
cleanup() {
    [ -n "$emb_pid" ] && kill "$emb_pid" 2>/dev/null && wait "$emb_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

node "$top/scripts/embedder/server.js" --port-file "$work/emb.port" --idle-timeout 3600 \
    2>"$work/emb.log" &
emb_pid=$!
await_port "$work/emb.port" "$emb_pid" "$work/emb.log" || exit 1
url=http://127.0.0.1:$(cat "$work/emb.port")
echo "embedder: $model, $(curl -sf "$url/health" | jq .workers) workers, $url"

# build SET: the collection's index with vectors, timed.
build() {
    local s=$1 d=$data/$1 ix=$cache/$1.sage
    if [ -f "$ix" ]; then
        fig note "$figs" "$s: index reused from $cache, its embedding chunks/s not measured in this run"
        return 0
    fi
    if [ -f "$d/docs.jsonl.zst" ]; then
        zstd -q -dc "$d/docs.jsonl.zst" >"$work/$s.jsonl"
    else
        cp "$d/docs.jsonl" "$work/$s.jsonl"
    fi
    local t0 t1
    t0=$(date +%s.%N)
    "$bin/sage-indexer" build -q --out "$ix.tmp" --chunk-size 1G --max-chunk 1G --chunk-overlap 0 \
        --embed-url "$url" --embed-model "$model" --embed-batch 8 --embed-concurrency 4 \
        --report "$cache/$s.report.json" "$work/$s.jsonl" 2>"$cache/$s.build.log"
    t1=$(date +%s.%N)
    mv "$ix.tmp" "$ix"
    rm -f "$cache/.$s.sage.tmp.verified"
    local n sec
    n=$(jq .summary.embedded "$cache/$s.report.json")
    sec=$(echo "$t1 - $t0" | bc)
    echo "build $s: $n chunks embedded in $sec s ($(echo "scale=1; $n / $sec" | bc) chunks/s)"
    fig add "$figs" "embed-chunks-per-s-$s" sage "$(echo "scale=3; $n / $sec" | bc)" --unit chunks/s \
        --better higher --what "index build with embeddings, $s ($n chunks), $model through the local embedder (batch 8, concurrency 4)"
    jq -nc --arg set "$s" --argjson n "$n" --argjson s "$sec" \
        '{set: $set, what: "build", chunks_embedded: $n, seconds: $s, chunks_per_s: ($n / $s)}' >>"$out_json"
}

# score SET TAG QUERY-FLAGS...: runs the queries and prints "ndcg recall".
score() {
    local s=$1 tag=$2
    shift 2
    "$bin/sage-indexer" query -k 1000 "$@" --trec "$data/$s/queries.jsonl" "$cache/$s.sage" \
        >"$work/$s-$tag.run"
    "$PY" "$data/eval.py" "$data/$s/qrels.tsv" "$work/$s-$tag.run" >"$work/$s-$tag.eval"
    awk '$1 == "ndcg_cut_10" { n = $3 } $1 == "recall_100" { r = $3 } END { print n, r }' \
        "$work/$s-$tag.eval"
}

emit() {    # SET TAG "NDCG RECALL"
    local n=${3% *} r=${3#* }
    printf '%-10s %-26s %8s %8s\n' "$1" "$2" "$n" "$r"
    jq -nc --arg set "$1" --arg run "$2" --argjson n "$n" --argjson r "$r" \
        '{set: $set, run: $run, ndcg10: $n, recall100: $r}' >>"$out_json"
}
# record SET KIND DESCRIPTION "NDCG RECALL": figures ndcg10-SET-KIND, recall100-SET-KIND
record() {
    local what="$1, $3"
    [ "$2" = bm25 ] || what+=", $model"
    fig add "$figs" "ndcg10-$1-$2" sage "${4% *}" --unit nDCG@10 --better higher \
        --what "nDCG@10 on $what, eval.py"
    fig add "$figs" "recall100-$1-$2" sage "${4#* }" --unit Recall@100 --better higher \
        --what "Recall@100 on $what, eval.py"
}
declare -A grid     # SET/rrf-W, SET/cvx-W: "NDCG RECALL" of the grid's runs

for s in cisi cranfield scifact; do build "$s"; done
printf '%-10s %-26s %8s %8s\n' collection run ndcg@10 r@100

# fusion settings chosen on CISI and Cranfield
grid_rrf="0.5 1 2 3"
grid_convex="0.2 0.35 0.5 0.65 0.8"
best_rrf='' best_rrf_v=-1 best_cvx='' best_cvx_v=-1
for s in cisi cranfield; do
    v=$(score "$s" bm25 --mode bm25)
    emit "$s" bm25 "$v"
    record "$s" bm25 "BM25" "$v"
    v=$(score "$s" dense --mode dense --embed-url "$url")
    emit "$s" dense "$v"
    record "$s" dense "dense" "$v"
done
for w in $grid_rrf; do
    sum=0
    for s in cisi cranfield; do
        v=$(score "$s" "rrf-$w" --mode hybrid --fusion rrf --w-bm25 1 --w-dense "$w" --embed-url "$url")
        emit "$s" "hybrid rrf w_dense=$w" "$v"
        grid[$s/rrf-$w]=$v
        sum=$(echo "$sum + ${v% *}" | bc -l)
    done
    if (($(echo "$sum > $best_rrf_v" | bc -l))); then best_rrf=$w; best_rrf_v=$sum; fi
done
for w in $grid_convex; do
    sum=0
    wb=$(echo "1 - $w" | bc -l)
    for s in cisi cranfield; do
        v=$(score "$s" "cvx-$w" --mode hybrid --fusion convex --w-bm25 "$wb" --w-dense "$w" \
                  --embed-url "$url")
        emit "$s" "hybrid convex w_dense=$w" "$v"
        grid[$s/cvx-$w]=$v
        sum=$(echo "$sum + ${v% *}" | bc -l)
    done
    if (($(echo "$sum > $best_cvx_v" | bc -l))); then best_cvx=$w; best_cvx_v=$sum; fi
done
echo "chosen on cisi+cranfield: rrf w_bm25=1 w_dense=$best_rrf; convex w_dense=$best_cvx"
fig meta "$figs" fusion "chosen on cisi+cranfield: rrf w_bm25=1 w_dense=$best_rrf; convex w_dense=$best_cvx"
rrf_what="hybrid, reciprocal rank fusion w_bm25=1 w_dense=$best_rrf (chosen on cisi+cranfield)"
cvx_what="hybrid, convex fusion w_dense=$best_cvx (chosen on cisi+cranfield)"
for s in cisi cranfield; do
    record "$s" hybrid-rrf "$rrf_what" "${grid[$s/rrf-$best_rrf]}"
    record "$s" hybrid-convex "$cvx_what" "${grid[$s/cvx-$best_cvx]}"
done

# SciFact with those settings, unchanged
s=scifact
v=$(score "$s" bm25 --mode bm25)
emit "$s" bm25 "$v"
record "$s" bm25 "BM25" "$v"
v=$(score "$s" dense --mode dense --embed-url "$url")
emit "$s" dense "$v"
record "$s" dense "dense" "$v"
v=$(score "$s" rrf --mode hybrid --fusion rrf --w-bm25 1 --w-dense "$best_rrf" --embed-url "$url")
emit "$s" "hybrid rrf w_dense=$best_rrf" "$v"
record "$s" hybrid-rrf "$rrf_what" "$v"
wb=$(echo "1 - $best_cvx" | bc -l)
v=$(score "$s" cvx --mode hybrid --fusion convex --w-bm25 "$wb" --w-dense "$best_cvx" --embed-url "$url")
emit "$s" "hybrid convex w_dense=$best_cvx" "$v"
record "$s" hybrid-convex "$cvx_what" "$v"

# The target (hybrid >= max(BM25, dense) on SciFact) and, per query, why
# fusion lands where it does: eval.py --per-query on the three runs above.
for r in bm25 dense cvx; do
    "$PY" "$data/eval.py" --per-query "$data/scifact/qrels.tsv" "$work/scifact-$r.run" |
        awk '$1 == "ndcg_cut_10" && $2 != "all" { print $2, $3 }' >"$work/pq-$r"
done
analysis=$("$PY" - "$work/pq-bm25" "$work/pq-dense" "$work/pq-cvx" <<'PY'
import sys
b, d, c = ({q: float(v) for q, v in (l.split() for l in open(p))} for p in sys.argv[1:4])
qs = sorted(b)
mean = lambda xs: sum(xs) / len(xs)
mb, md, mc = mean([b[q] for q in qs]), mean([d.get(q, 0) for q in qs]), mean([c.get(q, 0) for q in qs])
best = max(mb, md)
verdict = "met" if mc >= best else "not met, by %.3f" % (best - mc)
print("SciFact target hybrid >= max(BM25, dense): %s (convex %.3f, BM25 %.3f, dense %.3f); "
      "per query: dense nDCG@10 is 0 on %d of %d queries and beats BM25 on %d; picking the better "
      "of BM25 and dense per query (an oracle) reaches %.3f; convex fusion helps %d queries and "
      "hurts %d (%d of them BM25-perfect)" % (
          verdict, mc, mb, md, sum(d.get(q, 0) == 0 for q in qs), len(qs),
          sum(d.get(q, 0) > b[q] for q in qs), mean([max(b[q], d.get(q, 0)) for q in qs]),
          sum(c.get(q, 0) > b[q] for q in qs), sum(c.get(q, 0) < b[q] for q in qs),
          sum(c.get(q, 0) < b[q] == 1.0 for q in qs)))
PY
)
echo "$analysis"
fig note "$figs" "$analysis"
