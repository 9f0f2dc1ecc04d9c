#!/usr/bin/env bash
# make demo's script: builds the sample index with vectors from the local
# embedder, queries it offline and through a sage-searchd it starts on a free
# port (a query sharing no word with its answer: BM25 finds nothing, hybrid
# finds it), and leaves no daemon behind.
. "$SAGE_TOP/tests/lib/tap.sh"

t_ok 'demo indexes the sample with vectors, answers offline and over HTTP, stops both servers' '
    SAGE_DEMO_OUT=$PWD/demo bash "$SAGE_TOP/scripts/demo.sh" > out 2> err &&
    grep -q "kestrel:guide/security.md" out &&
    grep -q "\"path\": \"ops/backup.md\"" out &&
    grep -q "^0 chunks match \"power outage\"" out &&
    grep -A3 "^-- hybrid" out | grep -q "^ 1\. .*notes:power-failure.md" &&
    sed -n "/mode.: .hybrid/,\$p" out | grep -m1 "\"path\"" | grep -q power-failure.md &&
    port=$(cat demo/port) && ! curl -s "http://127.0.0.1:$port/healthz" >/dev/null &&
    eport=$(cat demo/embedder.port) && ! curl -s "http://127.0.0.1:$eport/health" >/dev/null'

t_done
