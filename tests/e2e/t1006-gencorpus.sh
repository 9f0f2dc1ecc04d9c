#!/usr/bin/env bash
# The scale benchmark's corpus generator (scripts/bench/gen_corpus.c) with the
# committed model: the same seed gives the same corpus, a smaller N is a prefix
# of a larger one, every line is one chunk for sage-indexer, every query's
# words are in one chunk, and bad input is refused.
. "$SAGE_TOP/tests/lib/tap.sh"
GEN=$SAGE_BUILD/bench/gen_corpus
MODEL=$SAGE_TOP/datasets/scale/model.tsv

t_ok 'the same seed makes the same corpus, a smaller N its first chunks' '
    mkdir a b c &&
    "$GEN" "$MODEL" 3000 7 a 40 && "$GEN" "$MODEL" 3000 7 b 40 && "$GEN" "$MODEL" 1000 7 c 40 &&
    cmp a/corpus/part-0000.jsonl b/corpus/part-0000.jsonl && cmp a/chunks.tsv b/chunks.tsv &&
    cmp a/queries.txt b/queries.txt &&
    head -n 1000 a/chunks.tsv | cmp - c/chunks.tsv &&
    [ "$(wc -l < a/queries.txt)" = 40 ] && jq -e ".chunks == 3000 and .queries == 40" a/stats.json'

t_ok 'each line is one chunk of at most 1000 bytes of text' '
    mkdir a && "$GEN" "$MODEL" 2000 1 a 10 &&
    jq -e "(.text | utf8bytelength) <= 1000 and (.title | length) > 0" a/corpus/part-0000.jsonl > /dev/null &&
    sage-indexer build -q --out a.sage a/corpus &&
    sage-indexer info --json a.sage | jq -e ".counts.documents == 2000 and .counts.chunks == 2000"'

t_ok 'the words of each query are in one chunk, stop words left out' '
    mkdir a && "$GEN" "$MODEL" 2000 3 a 50 &&
    awk -F"\t" "NR == FNR { q[NR] = \$0; n = NR; next }
        { t = \" \" tolower(\$2) \" \"; gsub(/[^[:alnum:]\200-\377]+/, \" \", t)
          for (i = 1; i <= n; i++) if (!(i in ok)) {
              k = split(q[i], w, \" \"); all = 1
              for (j = 1; j <= k; j++) if (index(t, \" \" w[j] \" \") == 0) { all = 0; break }
              if (all) ok[i] = 1 } }
        END { for (i = 1; i <= n; i++) if (!(i in ok)) { print \"no chunk has: \" q[i]; bad = 1 }
              exit bad }" a/queries.txt a/chunks.tsv &&
    ! grep -Eqw "the|and|of" a/queries.txt'

t_ok 'a bad model fails, a bad N is a usage error' '
    mkdir a && printf "param\ttail_s\t2\nword\tfoo\t1\t0\n" > m.tsv &&
    { "$GEN" m.tsv 10 1 a; [ $? = 1 ]; } && { "$GEN" "$MODEL" 0 1 a; [ $? = 2 ]; } &&
    { "$GEN" "$MODEL" 10x 1 a; [ $? = 2 ]; } && { "$GEN" "$MODEL" 10 1 missing-dir; [ $? = 1 ]; }'

t_done
