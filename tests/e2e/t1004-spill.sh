#!/usr/bin/env bash
# The index builder under --memory-limit: postings spilled as sorted runs to
# a temporary file and merged give the same file, sha256 for sha256, as an
# unlimited build; the temporary file leaves nothing behind; a temporary
# directory that cannot be used fails the build with a clear message.
. "$SAGE_TOP/tests/lib/tap.sh"

# A JSONL collection of 4000 short documents over a skewed vocabulary, with
# words in every document so that their postings span every run.
corpus() {
    awk 'BEGIN {
        srand(42);
        for (i = 0; i < 4000; i++) {
            t = "common words in doc" (i % 9);
            n = 5 + int(rand() * 30);
            for (j = 0; j < n; j++) { r = rand(); t = t " w" int(r * r * r * 5000) "x"; }
            printf "{\"id\":\"d%d\",\"title\":\"Document %d\",\"text\":\"%s\"}\n", i, i, t;
        }
    }' > docs.jsonl
}
build() {   # build OUT [OPTION...]
    local out=$1
    shift
    sage-indexer build -q --out "$out" "$@" docs.jsonl 2>> log
}
sha() { cut -d" " -f1 "$1.sha256"; }

t_ok 'a tiny --memory-limit gives the same sha256 as no limit and as the default' '
    corpus && mkdir tmp &&
    build a/none.sage --memory-limit 0 &&
    build b/tiny.sage --memory-limit 16K --tmp-dir tmp &&
    build c/some.sage --memory-limit 300K &&
    build d/default.sage &&
    [ "$(sha a/none.sage)" = "$(sha b/tiny.sage)" ] &&
    [ "$(sha a/none.sage)" = "$(sha c/some.sage)" ] &&
    [ "$(sha a/none.sage)" = "$(sha d/default.sage)" ] &&
    sage-indexer verify b/tiny.sage &&
    sage-indexer query --json b/tiny.sage w17x > q.json && jq -e ".total > 0" q.json'

t_ok 'SAGE_MEMORY_LIMIT and SAGE_TMP_DIR are honoured; nothing is left in the directory' '
    corpus && mkdir tmp &&
    build a/none.sage --memory-limit 0 &&
    SAGE_MEMORY_LIMIT=8K SAGE_TMP_DIR=tmp build b/env.sage &&
    [ "$(sha a/none.sage)" = "$(sha b/env.sage)" ] &&
    [ -z "$(ls -A tmp)" ] && [ "$(ls -A b | sort)" = "$(printf ".env.sage.verified\nenv.sage\nenv.sage.sha256" | sort)" ]'

t_ok 'a missing --tmp-dir fails the build with exit 1, the reason, and no index' '
    corpus &&
    t_status 1 sage-indexer build -q --memory-limit 1M --tmp-dir no/such --out x.sage docs.jsonl &&
    grep -q "cannot create a temporary file in .no/such.: No such file or directory" err &&
    [ ! -e x.sage ]'

t_ok 'a bad --memory-limit is a usage error naming the flag' '
    t_status 2 sage-indexer build --memory-limit 12Q --out x.sage . && grep -q -- "--memory-limit" err'

t_ok 'duplicate files (aliases added to records already encoded) give the same sha256 under a tiny limit, whole and as a shard' '
    mkdir -p dup/a dup/b &&
    for i in 1 2 3 4 5 6; do printf "# Page %s\n\nwords of page %s and more words\n" $i $i > dup/a/p$i.md; done &&
    cp dup/a/p2.md dup/b/copy2.md && cp dup/a/p2.md dup/b/again2.md && cp dup/a/p5.md dup/b/copy5.md &&
    sage-indexer build -q --build-time 1700000000 --memory-limit 0 --out d/none.sage dup 2>> log &&
    sage-indexer build -q --build-time 1700000000 --memory-limit 16K --out d/tiny.sage dup 2>> log &&
    sage-indexer build -q --build-time 1700000000 --memory-limit 0 --shard 0/2 --out d/s0.sage dup 2>> log &&
    sage-indexer build -q --build-time 1700000000 --memory-limit 16K --shard 0/2 --out d/s0t.sage dup 2>> log &&
    [ "$(sha d/none.sage)" = "$(sha d/tiny.sage)" ] && [ "$(sha d/s0.sage)" = "$(sha d/s0t.sage)" ] &&
    grep -q "3 duplicates" log'

t_done
