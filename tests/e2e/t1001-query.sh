#!/usr/bin/env bash
# Offline query over the sample corpus: ranking, snippets with marked terms,
# JSON output, stemming and case folding shared with the indexer.
. "$SAGE_TOP/tests/lib/tap.sh"
S=$SAGE_TOP/datasets/sample
build() { sage-indexer build --out x.sage --library kestrel=$S/kestrel --library notes=$S/notes; }

t_ok 'best hit for a topical query' '
    build && sage-indexer query --json x.sage "certificate rotation" > q.json &&
    jq -e ".results[0].path == \"guide/security.md\" and .results[0].library == \"kestrel\"" q.json'

t_ok 'stemming and case folding: RESTORING finds restore' '
    build && sage-indexer query --json x.sage RESTORING > q.json &&
    jq -e ".results[0].path == \"ops/backup.md\"" q.json &&
    jq -e ".results[0].snippet | test(\"\\\\[restore\\\\]\")" q.json'

t_ok 'k limits hits, total counts all matches' '
    build && sage-indexer query --json -k 2 x.sage kestrel > q.json &&
    jq -e "(.results | length) == 2 and .total > 2 and .total_exact" q.json &&
    jq -e ".results[0].score >= .results[1].score" q.json'

t_ok 'no match gives zero hits and exit 0' '
    build && sage-indexer query --json x.sage xylophone > q.json &&
    jq -e ".total == 0 and (.results | length) == 0" q.json'

t_ok 'text output lists rank, library:path, title and snippet' '
    build && sage-indexer query x.sage "group commit" > out &&
    grep -q "^ 1\. .*kestrel:ops/performance.md" out && grep -q "\[commit\]" out'

t_ok 'query on a damaged index fails cleanly' '
    build && corrupt_section x.sage header 70 x01 &&
    t_status 1 sage-indexer query x.sage kestrel && grep -q "header checksum mismatch" err'

paths_for() { sage-indexer query --json -k 20 x.sage "$1" | jq -c '[.results[].path] | unique'; }

t_ok 'quoted phrase: words adjacent and in order' '
    build && [ "$(paths_for "\"replication lag\"")" = "[\"ops/troubleshooting.md\"]" ] &&
    [ "$(paths_for "\"lag replication\"")" = "[]" ] &&
    [ "$(paths_for "\"in sync set\"")" = "[\"glossary.txt\",\"ops/troubleshooting.md\",\"ops/upgrading.txt\"]" ]'

t_ok '+word required, -word excluded' '
    build && paths_for "segment" > all && grep -q backup all && grep -q performance all &&
    paths_for "segment -snapshot" > ex && ! grep -q backup ex && grep -q performance ex &&
    paths_for "+fsync segment" > req && [ "$(cat req)" = "[\"ops/performance.md\",\"ops/troubleshooting.md\"]" ]'

t_ok 'library: and path: filters, and --library' '
    build && [ "$(paths_for "library:notes incident")" = "[\"on-call.md\"]" ] &&
    paths_for "path:ops/ kestrel" | jq -e "all(startswith(\"ops/\"))" &&
    sage-indexer query --json --library notes x.sage segment > q.json &&
    jq -e "all(.results[]; .library == \"notes\")" q.json'

t_ok 'bad queries: clear errors, exit 2' '
    build && t_status 2 sage-indexer query x.sage "library:" && grep -q "has no value" err &&
    t_status 2 sage-indexer query x.sage "$(printf "bad \\377 bytes")" && grep -q "UTF-8" err &&
    t_status 2 sage-indexer query x.sage "$(head -c 5000 /dev/zero | tr "\\0" a)" &&
    grep -q "longer than" err'

t_done
