#!/usr/bin/env bash
# sage-indexer merge: a corpus built as N shards (build --shard I/N) and
# merged is the whole build, section for section but the build record: the
# same documents in the same order, the same postings, chunk texts and
# vectors, so queries (BM25, dense, hybrid) give the same hits with the same
# scores; duplicates across shards are indexed once, archive members and
# JSONL files land in any shard. A missing, duplicated, foreign, damaged or
# differently analysed shard is refused, exit 1, no file written. The merged
# file publishes, fetches and serves as any index.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/corpus.sh"
. "$SAGE_TOP/tests/lib/fakegpu.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
S=$SAGE_TOP/datasets/sample
W=$T_ROOT/w
mkdir -p "$W"

QUERIES="backup restore|snapshot|kestrel broker|security certificates|configuration|on-call"
QUERIES+="|power failure|glossary|upgrading|troubleshooting slow|installing|performance tuning"
QUERIES+="|river garden|copper lantern|apple signal|meadow orbit|mark7|tapir bundled"

# A few hundred documents: the sample, Markdown files in nested folders
# (some the same bytes as others), JSONL files and a tar.gz whose members
# fall in different shards.
mixed() {
    local d=$1 i m=()
    mkdir -p "$d" && cp -r "$S" "$d/sample" &&
    for i in $(seq 0 119); do
        mkdir -p "$d/notes/n$((i % 7))" &&
        corpus "$i" 1 "mark$((i % 13))" | jq -r '"# Note \(.id)\n\n\(.text)\n"' \
            >"$d/notes/n$((i % 7))/note$i.md" || return 1
    done &&
    cp "$d/notes/n1/note1.md" "$d/notes/n6/copy-a.md" && cp "$d/notes/n1/note1.md" "$d/zz-copy.md" &&
    cp "$d/notes/n2/note9.md" "$d/notes/n0/copy-b.md" &&
    corpus 7 80 river >"$d/river.jsonl" && corpus 8 80 copper >"$d/copper.jsonl" &&
    corpus 9 40 apple >"$d/notes/apple.jsonl" &&
    for i in $(seq 1 12); do
        m+=("m$i.txt=@text:tapir bundled member $i meadow")
    done &&
    mkarchive "$d/bundle.tar.gz" tar.gz "${m[@]}"
}

# build_set CORPUS OUT N [ARGS...]: OUT.sage whole and OUT.I.sage per shard.
build_set() {
    local c=$1 out=$2 n=$3 i
    shift 3
    sage-indexer build -q --build-time 0 --out "$out.sage" "$@" "$c" 2>>build.log &&
    for i in $(seq 0 $((n - 1))); do
        sage-indexer build -q --build-time 0 --shard "$i/$n" --out "$out.$i.sage" "$@" "$c" \
            2>>build.log || return 1
    done
}

# Every section but the build record, by checksum.
sections() {
    sage-indexer info --json "$1" | jq -c '[.sections[] | select(.name != "build") | [.name, .xxh3]]'
}

# same_answers A B [QUERY-ARGS...]: every query of QUERIES gives the same
# JSON (hits, ids, paths, chunks, scores, snippets) but for the time taken.
same_answers() {
    local a=$1 b=$2 q
    shift 2
    while IFS= read -r q; do
        sage-indexer query --json -k 20 "$@" "$a" "$q" | jq -S 'del(.took_ms)' >qa.json &&
        sage-indexer query --json -k 20 "$@" "$b" "$q" | jq -S 'del(.took_ms)' >qb.json &&
        cmp qa.json qb.json || { echo "answers differ for '$q'"; diff qa.json qb.json | head; return 1; }
    done < <(tr "|" "\n" <<<"$QUERIES")
}

# refused CMD...: exit 1 (the message in ./err), and no m.sage left.
refused() {
    t_status 1 "$@" && [ ! -e m.sage ] && [ ! -e m.sage.sha256 ]
}

t_ok 'the sample: 3 shards merged are the whole build but for the build record' '
    build_set "$S" s 3 &&
    sage-indexer merge -q --build-time 0 --out m.sage s.2.sage s.0.sage s.1.sage &&
    [ "$(sections m.sage)" = "$(sections s.sage)" ] && same_answers s.sage m.sage &&
    sage-indexer verify m.sage &&
    sage-indexer info --json m.sage >i.json && sage-indexer info --json s.sage >w.json &&
    jq -e ".counts.documents == 11 and .build.merged_from == 3 and .build.options.shard == null" i.json &&
    [ "$(jq -S "del(.build.merged_from) | .build" i.json)" = "$(jq -S .build w.json)" ] &&
    sage-indexer info m.sage >i.txt && grep -q "11" i.txt'

t_ok 'a mixed corpus (JSONL, archive members, duplicates across shards): the same index' '
    mixed c && build_set c s 3 &&
    for i in 0 1 2; do
        [ "$(sage-indexer info --json s.$i.sage | jq .counts.documents)" -gt 60 ] || exit 1
    done &&
    sage-indexer merge -q --build-time 0 --out m.sage s.0.sage s.1.sage s.2.sage &&
    [ "$(sections m.sage)" = "$(sections s.sage)" ] && same_answers s.sage m.sage &&
    sage-indexer info --json s.sage >w.json && sage-indexer info --json m.sage >i.json &&
    jq -e ".counts.documents > 300 and .build.counts.duplicates == 3" w.json &&
    jq -e ".build.counts.duplicates == 3 and .build.counts.documents == $(jq .counts.documents w.json)" i.json &&
    cp s.0.sage s.1.sage s.2.sage "$W/"'

t_ok '--memory-limit and --tmp-dir: the same file; nothing left behind' '
    mkdir tmp &&
    sage-indexer merge -q --build-time 0 --out a.sage "$W/s.0.sage" "$W/s.1.sage" "$W/s.2.sage" &&
    sage-indexer merge -q --build-time 0 --memory-limit 16K --tmp-dir tmp --out b.sage \
        "$W/s.0.sage" "$W/s.1.sage" "$W/s.2.sage" &&
    cmp a.sage b.sage && [ -z "$(ls -A tmp)" ]'

t_ok 'embeddings: vectors merged as stored; dense and hybrid answers as the whole build' '
    fg_start srv --dim 32 --max-inputs 8 &&
    mixed c &&
    build_set c e 3 --embed-url "$FG_URL" --embed-model fake --embed-batch 8 &&
    sage-indexer merge -q --build-time 0 --out em.sage e.1.sage e.0.sage e.2.sage &&
    [ "$(sections em.sage)" = "$(sections e.sage)" ] &&
    sections em.sage | grep -c vectors &&
    same_answers e.sage em.sage --mode dense --embed-url "$FG_URL" &&
    same_answers e.sage em.sage --mode hybrid --embed-url "$FG_URL" &&
    sage-indexer merge -q --hnsw --hnsw-threads 1 --out h.sage e.1.sage e.0.sage e.2.sage &&
    sage-indexer verify h.sage && sage-indexer info --json h.sage >h.json &&
    jq -e ".hnsw.nodes == .counts.chunks and .build.embedding.hnsw.threads == 1" h.json &&
    sage-indexer query --json --mode dense --dense hnsw --embed-url "$FG_URL" h.sage copper >d.json &&
    jq -e ".total > 0" d.json &&
    sage-indexer build -q --shard 1/3 --out plain.1.sage c &&
    refused sage-indexer merge -q --out m.sage e.0.sage plain.1.sage e.2.sage &&
    grep -q "differ in their embedding status" err && fg_stop'

t_ok 'a missing shard is refused, unless --partial' '
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" "$W/s.2.sage" &&
    grep -q "shard 1/3 is missing" err &&
    sage-indexer merge -q --partial --out p.sage "$W/s.0.sage" "$W/s.2.sage" &&
    [ "$(sage-indexer info --json p.sage | jq .counts.documents)" -gt 100 ]'

t_ok 'a duplicated shard, the same file twice, another N: refused' '
    cp "$W/s.1.sage" again.sage &&
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" "$W/s.1.sage" again.sage "$W/s.2.sage" &&
    grep -q "are both shard 1/3" err &&
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" "$W/s.0.sage" &&
    grep -q "given twice" err &&
    sage-indexer build -q --shard 1/4 --out four.sage "$S" &&
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" four.sage "$W/s.2.sage" &&
    grep -q "shard 1/4.*not one set\|shard 1/3.*not one set" err'

t_ok 'a shard analysed otherwise, or a whole index among shards: refused' '
    sage-indexer build -q --shard 1/3 --stemmer porter --out porter.sage "$S" &&
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" porter.sage "$W/s.2.sage" &&
    grep -q "differ in their tokenizer" err && grep -q porter err &&
    sage-indexer build -q --shard 1/3 --chunk-size 500 --out small.sage "$S" &&
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" small.sage "$W/s.2.sage" &&
    grep -q "differ in their chunk size" err &&
    sage-indexer build -q --out whole.sage "$S" &&
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" whole.sage &&
    grep -q "is a shard and .*whole.sage. is not" err &&
    refused sage-indexer merge -q --hnsw --out m.sage "$W/s.0.sage" "$W/s.1.sage" "$W/s.2.sage" &&
    grep -q -- "--hnsw: .* has no vectors" err'

t_ok 'a damaged shard is refused by name' '
    cp "$W/s.1.sage" bad.sage && printf "\x55" | dd of=bad.sage bs=1 seek=9000 conv=notrunc 2>/dev/null &&
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" bad.sage "$W/s.2.sage" &&
    grep -q "cannot use .bad.sage.:" err &&
    refused sage-indexer merge -q --out m.sage "$W/s.0.sage" no-such.sage &&
    grep -q "cannot use .no-such.sage." err'

t_ok 'whole indexes merge one after the other; the same path twice is refused' '
    mkdir -p c1 c2 && corpus 1 30 alpha >c1/a.jsonl && corpus 2 20 beta >c2/b.jsonl &&
    sage-indexer build -q --out one.sage c1 && sage-indexer build -q --out two.sage c2 &&
    sage-indexer merge -q --out m2.sage one.sage two.sage &&
    jq -e ".counts.documents == 50 and .build.merged_from == 2" <(sage-indexer info --json m2.sage) &&
    sage-indexer query --json m2.sage beta >q.json && jq -e ".results[0].id >= 30" q.json &&
    cp one.sage one-again.sage &&
    refused sage-indexer merge -q --out m.sage one.sage one-again.sage &&
    grep -q "document .a.jsonl#alpha0. of library .default. is in both" err'

t_ok 'usage: no --out, no inputs' '
    t_status 2 sage-indexer merge "$W/s.0.sage" && grep -q -- "--out is required" err &&
    t_status 2 sage-indexer merge --out m.sage && grep -q "nothing to merge" err &&
    sage-indexer merge --help >h.txt && grep -c -- "--partial" h.txt'

t_ok 'the merged file publishes, fetches and is served by sage-searchd' '
    sage-indexer merge -q --out m.sage "$W/s.0.sage" "$W/s.1.sage" "$W/s.2.sage" &&
    "$SAGE_TOP/scripts/publish" m.sage pub --name docs >out &&
    jq -e ".generation == 1 and .build.counts.documents > 300 and .build.merged_from == 3" pub/docs.latest.json &&
    mkdir ix && "$SAGE_TOP/scripts/fetch-index" pub ix --name docs --no-wait &&
    sd_start sd ix && sd_expect 200 r.json "/v1/search?q=tapir+bundled&k=20" &&
    jq -e ".total == 12 and ([.hits[].path | select(startswith(\"bundle.tar.gz!/\"))] | length) == 12" r.json &&
    sd_stop'

t_done
