#!/usr/bin/env bash
# JSONL collections. A .jsonl file on disk is parsed by the workers in 4 MiB
# ranges, a buffer at a time (it is never held whole); one inside an archive
# is parsed from the member's bytes. Both give the same documents and the
# same per-line skips, line numbers counted across the ranges.
# What the file is gets decided from its first 64 KiB: a .jsonl that is an
# archive is walked as one, one with NUL bytes is a binary file, and a first
# line longer than 64 KiB falls back to reading the file whole.
. "$SAGE_TOP/tests/lib/tap.sh"

# lines: good, not JSON, no text, blank, NUL escaped (jansson refuses it),
# an integer id, and a last line without its newline.
mixed() {
    printf '{"id":"a1","title":"Alpha","text":"alpha bravo charlie"}\n'
    printf 'not json at all\n'
    printf '{"id":"a3"}\n'
    printf '\n'
    printf '{"id":"a5","text":"delta\\u0000echo"}\n'
    printf '{"id":7,"text":"foxtrot golf hotel"}'
}
statuses() { jq -c '[.files[] | [(.path | sub(".*c.jsonl"; "")), .status, .reason]]' "$1"; }

t_ok 'a JSONL file read from disk in ranges and the same file in a tar: the same documents and skips' '
    mkdir disk tar && mixed > disk/c.jsonl && cp disk/c.jsonl c.jsonl && tar -cf tar/t.tar c.jsonl &&
    sage-indexer build -q --report rd.json --out d.sage disk &&
    sage-indexer build -q --report rt.json --out t.sage tar &&
    [ "$(statuses rd.json)" = "$(statuses rt.json)" ] &&
    jq -e ".summary.indexed == 2 and .summary.skipped == 3" rd.json &&
    jq -e "[.files[] | select(.status == \"skipped\") | .path] == [\"disk/c.jsonl:2\", \"disk/c.jsonl:3\", \"disk/c.jsonl:5\"]" rd.json &&
    for q in foxtrot alpha; do
        sage-indexer query --json d.sage $q | jq -c "[.total, [.results[].path | sub(\"^[^#]*#\"; \"\")]]" > qd &&
        sage-indexer query --json t.sage $q | jq -c "[.total, [.results[].path | sub(\"^[^#]*#\"; \"\")]]" > qt &&
        cmp qd qt && jq -e ".[0] == 1" qd || return 1
    done'

t_ok 'many lines, any thread count and a tiny memory limit: the same sha256' '
    mkdir c && awk "BEGIN { for (i = 0; i < 3000; i++) printf \"{\\\"id\\\":\\\"d%d\\\",\\\"text\\\":\\\"word%d common w%d\\\"}\\n\", i, i % 97, i }" > c/big.jsonl &&
    for i in 1 2 3; do head -c $((i * 20000)) c/big.jsonl | sed "\$d" > c/part$i.jsonl; done &&
    sage-indexer build -q --build-time 1 -j 1 --memory-limit 0 --out a.sage c &&
    sage-indexer build -q --build-time 1 -j 4 --memory-limit 16K --out b.sage c &&
    cmp a.sage b.sage &&
    sage-indexer query --json a.sage w123 | jq -e ".total == 4"'

# big.jsonl: 40000 lines of about 300 bytes (12 MB, three ranges), a line
# that is not JSON every 997 and one without text every 1999.
big() {
    awk 'BEGIN {
        srand(7);
        pad = sprintf("%200s", ""); gsub(/ /, "z", pad);
        for (i = 1; i <= 40000; i++) {
            if (i % 997 == 0) { print "not json " i; continue }
            if (i % 1999 == 0) { printf "{\"id\":\"n%d\"}\n", i; continue }
            printf "{\"id\":\"d%d\",\"title\":\"Line %d\",\"text\":\"word%d shared t%d %s\"}\n", i, i, i % 101, int(rand() * 5000), pad
        }
    }'
}

t_ok 'a JSONL file of several ranges: the skips by line number, as from a tar; any -j, any limit, the same file' '
    mkdir disk tar && big > disk/big.jsonl && [ "$(stat -c %s disk/big.jsonl)" -gt 8400000 ] &&
    cp disk/big.jsonl big.jsonl && tar -cf tar/t.tar big.jsonl &&
    sage-indexer build -q --build-time 1 -j 1 --report rd.json --out d.sage disk &&
    sage-indexer build -q --build-time 1 -j 2 --memory-limit 64K --out d2.sage disk && cmp d.sage d2.sage &&
    sage-indexer build -q --build-time 1 --report rt.json --out t.sage tar &&
    jq -c "[.files[] | select(.status != \"indexed\") | [(.path | sub(\".*big.jsonl\"; \"\")), .reason]]" rd.json >sd &&
    jq -c "[.files[] | select(.status != \"indexed\") | [(.path | sub(\".*big.jsonl\"; \"\")), .reason]]" rt.json >st &&
    cmp sd st && jq -e "length == 60 and .[0] == [\":997\", \"not a JSON object\"] and .[-1] == [\":39980\", \"needs string \\\"id\\\" and \\\"text\\\"\"]" sd &&
    jq -e ".summary.indexed == 39940" rd.json &&
    sage-indexer query --json d.sage word7 shared | jq -c "[.results[] | .path | sub(\"^[^#]*\"; \"\")]" >qd &&
    sage-indexer query --json t.sage word7 shared | jq -c "[.results[] | .path | sub(\"^[^#]*\"; \"\")]" >qt &&
    cmp qd qt && jq -e "length == 10" qd'

t_ok 'a JSONL file of several ranges built as 3 shards and merged is the whole build' '
    mkdir c && big > c/big.jsonl &&
    sage-indexer build -q --build-time 1 --out w.sage c &&
    for i in 0 1 2; do sage-indexer build -q --build-time 1 --shard $i/3 --out s.$i.sage c || exit 1; done &&
    sage-indexer merge --out m.sage s.0.sage s.1.sage s.2.sage &&
    sections() { sage-indexer info --json "$1" | jq -c "[.sections[] | select(.name != \"build\") | [.name, .xxh3]]"; } &&
    [ "$(sections m.sage)" = "$(sections w.sage)" ]'

t_ok 'a first line longer than 64 KiB is read whole and indexed' '
    mkdir c && { printf "{\"id\":\"long\",\"text\":\""; head -c 70000 /dev/zero | tr "\\0" x; printf " needle\"}\n{\"id\":\"short\",\"text\":\"needle too\"}\n"; } > c/long.jsonl &&
    sage-indexer build -q --report r.json --out x.sage c &&
    jq -e ".summary.indexed == 2 and .summary.skipped == 0" r.json &&
    sage-indexer query --json x.sage needle | jq -e ".total == 2"'

t_ok 'a .jsonl that is a tar archive is walked as one; one with NUL bytes is a binary file' '
    mkdir c && printf "# Inner\n\nsecret archive words\n" > inner.md && tar -cf c/data.jsonl inner.md &&
    { printf "{\"id\":\"x\",\"text\":\"a\"}\n"; printf "\0\0\0"; } > c/bin.jsonl &&
    sage-indexer build -q --report r.json --out x.sage c &&
    jq -e "[.files[] | select(.path == \"c/data.jsonl!/inner.md\" and .status == \"indexed\")] | length == 1" r.json &&
    jq -e "[.files[] | select(.path == \"c/bin.jsonl\" and .status == \"skipped\" and (.reason | startswith(\"binary file\")))] | length == 1" r.json &&
    sage-indexer query --json x.sage secret | jq -e ".total == 1"'

t_done
