#!/usr/bin/env bash
# Search quality on the IR test collections of ../shared/datasets, scored by
# their eval.py: BM25 must reach the published or reference nDCG@10 floors
# (SciFact 0.679, the Pyserini BM25 figure; Cranfield 0.352; CISI 0.358).
. "$SAGE_TOP/tests/lib/tap.sh"
DATA=${SAGE_DATASETS:-$SAGE_TOP/../shared/datasets}

t_ok 'BM25 nDCG@10 at or above the floors on SciFact, Cranfield and CISI' '
    SAGE_DATASETS="$DATA" bash "$SAGE_TOP/scripts/bench/ir-eval.sh" > table &&
    cat table &&
    awk "\$1 == \"scifact\"   && \$2 == \"bm25\" && \$3 >= 0.679 {ok++}
         \$1 == \"cranfield\" && \$2 == \"bm25\" && \$3 >= 0.352 {ok++}
         \$1 == \"cisi\"      && \$2 == \"bm25\" && \$3 >= 0.358 {ok++}
         END {exit ok == 3 ? 0 : 1}" table'

t_ok 'block-max WAND returns the same top 10 as exhaustive scoring' '
    zstd -q -dc "$DATA/scifact/docs.jsonl.zst" > docs.jsonl &&
    sage-indexer build -q --out s.sage --chunk-size 1G --max-chunk 1G --chunk-overlap 0 docs.jsonl &&
    sage-indexer query -k 10 --trec "$DATA/scifact/queries.jsonl" s.sage > a.txt &&
    sage-indexer query -k 10 --scan --trec "$DATA/scifact/queries.jsonl" s.sage > b.txt &&
    [ -s a.txt ] && cmp a.txt b.txt'

t_done
