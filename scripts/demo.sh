#!/usr/bin/env bash
# make demo: indexes the shipped sample corpus and shows offline queries.
# (When sage-searchd lands, the demo starts it and queries it over HTTP.)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${SAGE_BUILD:-$top/build}
out=$bin/demo
mkdir -p "$out"

echo "== indexing datasets/sample into $out/sample.sage"
"$bin/sage-indexer" build --out "$out/sample.sage" \
    --library kestrel="$top/datasets/sample/kestrel" \
    --library notes="$top/datasets/sample/notes"
echo
echo "== sage-indexer verify"
"$bin/sage-indexer" verify "$out/sample.sage"
echo
for q in "how do I rotate TLS certificates" "restore from a snapshot"; do
    echo "== sage-indexer query -k 3 sample.sage \"$q\""
    "$bin/sage-indexer" query -k 3 "$out/sample.sage" "$q"
    echo
done
