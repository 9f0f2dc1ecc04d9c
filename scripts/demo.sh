#!/usr/bin/env bash
# make demo: indexes the shipped sample corpus, shows an offline query, then
# starts sage-searchd on a free loopback port over the index and asks it the
# same over HTTP, and stops it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${SAGE_BUILD:-$top/build}
out=${SAGE_DEMO_OUT:-$bin/demo}
mkdir -p "$out/indexes"

echo "== sage-indexer build: datasets/sample -> $out/indexes/sample.sage"
"$bin/sage-indexer" build -q --out "$out/indexes/sample.sage" \
    --library kestrel="$top/datasets/sample/kestrel" \
    --library notes="$top/datasets/sample/notes"
"$bin/sage-indexer" verify "$out/indexes/sample.sage"
echo
echo "== sage-indexer query -k 3 sample.sage \"how do I rotate TLS certificates\""
"$bin/sage-indexer" query -k 3 "$out/indexes/sample.sage" "how do I rotate TLS certificates"
echo

rm -f "$out/port"
"$bin/sage-searchd" --index-dir "$out/indexes" --listen 127.0.0.1:0 --port-file "$out/port" \
    2> "$out/searchd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do
    [ -s "$out/port" ] && break
    kill -0 $pid 2>/dev/null || { cat "$out/searchd.log"; exit 1; }
    sleep 0.05
done
port=$(cat "$out/port")
url="http://127.0.0.1:$port/v1/search?q=restore+from+a+snapshot&k=2"
echo "== sage-searchd on 127.0.0.1:$port; curl '$url'"
curl -sf "$url" | jq '{index, generation, total, took_ms,
    hits: [.hits[] | {score, library, path, heading, snippet}]}'
echo
echo "(searchd log: $out/searchd.log)"
