#!/usr/bin/env bash
# make demo's script: builds the sample index, queries it offline and through
# a sage-searchd it starts on a free port, and leaves no daemon behind.
. "$SAGE_TOP/tests/lib/tap.sh"

t_ok 'demo indexes the sample, answers offline and over HTTP, stops searchd' '
    SAGE_DEMO_OUT=$PWD/demo bash "$SAGE_TOP/scripts/demo.sh" > out 2> err &&
    grep -q "kestrel:guide/security.md" out &&
    grep -q "\"path\": \"ops/backup.md\"" out &&
    port=$(cat demo/port) && ! curl -s "http://127.0.0.1:$port/healthz" >/dev/null'

t_done
