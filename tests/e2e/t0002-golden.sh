#!/usr/bin/env bash
# Golden files: every committed index of a released format version keeps
# loading and answering, and every known-bad file is refused with the error
# it names in its .expect file.
. "$SAGE_TOP/tests/lib/tap.sh"
G=$SAGE_TOP/tests/golden

for f in "$G"/v*/*.sage; do
    rel=${f#$G/}
    t_ok "golden $rel verifies, matches its sha256 and answers a query" "
        sage-indexer verify '$f' &&
        (cd '$(dirname "$f")' && sha256sum -c --quiet '$(basename "$f").sha256') &&
        sage-indexer query --json '$f' snapshot restore > q.json &&
        jq -e '.results[0].path == \"ops/backup.md\"' q.json"
done

for f in "$G"/bad/*.sage; do
    want=$(cat "${f%.sage}.expect")
    t_ok "bad/$(basename "$f") is refused: $want" "
        t_status 1 sage-indexer verify '$f' && grep -qF '$want' err"
done

t_done
