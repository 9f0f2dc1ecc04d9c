#!/usr/bin/env bash
# Index distribution: scripts/publish and scripts/fetch-index through a local
# directory, an rsync daemon and an S3-compatible server (s3rver), all on
# 127.0.0.1 and started here. The manifest names the newest generation and is
# written last; old generations are pruned; a damaged or tampered file is
# refused before it reaches the index directory; an rsync transfer killed half
# way leaves the old generation served and the next run completes it.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/corpus.sh"
. "$SAGE_TOP/tests/lib/dist.sh"
PUBLISH=$SAGE_TOP/scripts/publish
FETCH=$SAGE_TOP/scripts/fetch-index
W=$T_ROOT/w
mkdir -p "$W"

# The generation INDEX_DIR/docs points at ("-" for none).
linked_gen() {
    local t
    t=$(readlink "$1/docs") || { echo -; return; }
    t=${t##*/docs.}
    echo $((10#${t%.sage}))
}

# hits DIR WORD: how many hits the index docs of DIR has for WORD.
hits() {
    sage-indexer query --json "$1/docs" "$2" | jq '.results | length'
}

t_ok 'indexes to publish build' '
    mkdir -p c1 c2 c3 && corpus 1 300 firstgen >c1/a.jsonl && corpus 2 300 secondgen >c2/a.jsonl &&
    corpus 3 12000 thirdgen >c3/a.jsonl &&
    sage-indexer build -q --out "$W/g1.sage" c1 && sage-indexer build -q --out "$W/g2.sage" c2 &&
    sage-indexer build -q --out "$W/g3.sage" c3 && [ "$(stat -c %s "$W/g3.sage")" -gt 4000000 ]'

t_ok 'a directory: generations, the manifest, pruning, fetching' '
    "$PUBLISH" "$W/g1.sage" pub --name docs >out && grep -q "generation 1" out &&
    jq -e ".file == \"docs.000001.sage\" and .generation == 1 and .build.counts.documents == 300" \
        pub/docs.latest.json &&
    (cd pub && sha256sum -c docs.000001.sage.sha256) &&
    mkdir ix && "$FETCH" pub ix --name docs --no-wait && [ "$(linked_gen ix)" = 1 ] &&
    [ "$(hits ix firstgen)" -gt 0 ] && [ -e ix/.sage-fetch/.docs.000001.sage.verified ] &&
    "$FETCH" pub ix --name docs --no-wait >out && grep -q "up to date" out &&
    "$PUBLISH" "$W/g2.sage" pub --name docs --keep 2 && "$PUBLISH" "$W/g1.sage" pub --name docs --keep 2 &&
    [ "$(ls pub | tr "\n" " ")" = "docs.000002.sage docs.000002.sage.sha256 docs.000003.sage docs.000003.sage.sha256 docs.latest.json " ] &&
    "$FETCH" pub ix --name docs --no-wait && [ "$(linked_gen ix)" = 3 ] &&
    [ "$(readlink ix/docs.previous)" = "$PWD/ix/.sage-fetch/docs.000001.sage" ]'

t_ok 'a damaged file is never published' '
    cp "$W/g1.sage" bad.sage && printf "\x55" | dd of=bad.sage bs=1 seek=9000 conv=notrunc 2>/dev/null &&
    t_status 1 "$PUBLISH" bad.sage pub --name docs && grep -q "does not verify" err &&
    [ ! -e pub ]'

t_ok 'a tampered or truncated published file is refused, the link stays' '
    "$PUBLISH" "$W/g1.sage" pub --name docs && mkdir ix && "$FETCH" pub ix --name docs --no-wait &&
    "$PUBLISH" "$W/g2.sage" pub --name docs &&
    printf "\x55" | dd of=pub/docs.000002.sage bs=1 seek=9000 conv=notrunc 2>/dev/null &&
    t_status 1 "$FETCH" pub ix --name docs --no-wait && grep -q "refused" err &&
    [ "$(linked_gen ix)" = 1 ] && [ ! -e ix/.sage-fetch/docs.000002.sage ] &&
    ! compgen -G "ix/.sage-fetch/.*.part" >/dev/null &&
    cp "$W/g2.sage" pub/docs.000002.sage && sum=$(sha256sum <"$W/g2.sage" | cut -c1-64) &&
    cp "$W/g2.sage" x.sage && truncate -s 20000 x.sage &&
    jq --arg s "$(sha256sum <x.sage | cut -c1-64)" ".sha256 = \$s" pub/docs.latest.json >m &&
    cp x.sage pub/docs.000002.sage && mv m pub/docs.latest.json &&
    t_status 1 "$FETCH" pub ix --name docs --no-wait && grep -q "does not verify" err &&
    [ "$(linked_gen ix)" = 1 ] && [ ! -e ix/.sage-fetch/docs.000002.sage ] &&
    cp "$W/g2.sage" pub/docs.000002.sage &&
    jq --arg s "$sum" ".sha256 = \$s" pub/docs.latest.json >m && mv m pub/docs.latest.json &&
    "$FETCH" pub ix --name docs --no-wait && [ "$(linked_gen ix)" = 2 ]'

t_ok 'a manifest naming another file, or not one of ours, is refused' '
    "$PUBLISH" "$W/g1.sage" pub --name docs && mkdir ix &&
    jq ".file = \"../../etc/passwd\"" pub/docs.latest.json >m && cp pub/docs.latest.json good &&
    mv m pub/docs.latest.json && t_status 1 "$FETCH" pub ix --name docs --no-wait &&
    grep -q "names no file" err && [ ! -e ix/docs ] &&
    echo "{}" >pub/docs.latest.json && t_status 1 "$FETCH" pub ix --name docs --no-wait &&
    t_status 1 "$PUBLISH" "$W/g2.sage" pub --name docs && grep -q "not one of ours" err &&
    t_status 2 "$FETCH" pub ix && t_status 2 "$PUBLISH" "$W/g1.sage" &&
    t_status 2 "$PUBLISH" "$W/g1.sage" pub --name "a b" && t_status 1 "$FETCH" pub nosuchdir --name docs'

t_ok 'rsync daemon: publish, fetch, prune' '
    rsyncd_start rs && "$PUBLISH" "$W/g1.sage" "$RS_URL" --name docs &&
    "$PUBLISH" "$W/g2.sage" "$RS_URL" --name docs --keep 1 &&
    [ "$(ls rs/pub | tr "\n" " ")" = "docs.000002.sage docs.000002.sage.sha256 docs.latest.json " ] &&
    mkdir ix && "$FETCH" "$RS_URL" ix --name docs --no-wait && [ "$(linked_gen ix)" = 2 ] &&
    [ "$(hits ix secondgen)" -gt 0 ] && echo "$RS_URL" >"$W/rs.url"'

# Starts a fetch slowed down to 400 kB/s in the background; its PID goes
# to slow.pid.
slow_fetch() {
    { SAGE_RSYNC_OPTS=--bwlimit=400 "$FETCH" "$1" ix --name docs --no-wait >slow.out 2>&1 &
      echo $! >slow.pid; wait $!; } &
}

t_ok 'rsync: a transfer killed half way keeps the old generation; the next run completes it' '
    url=$(cat "$W/rs.url") && mkdir ix && "$FETCH" "$url" ix --name docs --no-wait &&
    "$PUBLISH" "$W/g3.sage" "$url" --name docs &&
    slow_fetch "$url" && t_wait 20 test -s slow.pid &&
    t_wait 20 sh -c "[ \$(stat -c %s ix/.sage-fetch/.docs.000003.sage.part 2>/dev/null || echo 0) -gt 1500000 ]" &&
    kill "$(cat slow.pid)" && t_wait 10 t_gone "$(cat slow.pid)" &&
    size=$(stat -c %s ix/.sage-fetch/.docs.000003.sage.part) && echo "partial: $size bytes" &&
    [ "$size" -lt "$(stat -c %s "$W/g3.sage")" ] &&
    [ "$(linked_gen ix)" = 2 ] && [ "$(hits ix secondgen)" -gt 0 ] &&
    "$FETCH" "$url" ix --name docs --no-wait && [ "$(linked_gen ix)" = 3 ] &&
    cmp ix/.sage-fetch/docs.000003.sage "$W/g3.sage" && [ "$(hits ix thirdgen)" -gt 0 ]'

t_ok 'S3 (s3rver): publish, fetch, prune; a tampered object is refused' '
    s3_start s3 && export SAGE_S3_ENDPOINT=$S3_URL &&
    "$PUBLISH" "$W/g1.sage" s3://sage/nightly/ --name docs &&
    "$PUBLISH" "$W/g2.sage" s3://sage/nightly --name docs --keep 1 &&
    aws --endpoint-url "$S3_URL" s3 ls s3://sage/nightly/ | awk "{ print \$4 }" | tr "\n" " " >ls &&
    [ "$(cat ls)" = "docs.000002.sage docs.000002.sage.sha256 docs.latest.json " ] &&
    mkdir ix && "$FETCH" s3://sage/nightly/ ix --name docs --no-wait && [ "$(linked_gen ix)" = 2 ] &&
    [ "$(hits ix secondgen)" -gt 0 ] &&
    "$PUBLISH" "$W/g1.sage" s3://sage/nightly/ --name docs &&
    aws --endpoint-url "$S3_URL" s3 cp --only-show-errors "$W/g2.sage" s3://sage/nightly/docs.000003.sage &&
    t_status 1 "$FETCH" s3://sage/nightly/ ix --name docs --no-wait && grep -q refused err &&
    [ "$(linked_gen ix)" = 2 ]'

t_done
