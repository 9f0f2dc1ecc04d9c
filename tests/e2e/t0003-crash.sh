#!/usr/bin/env bash
# Crash safety: a build killed at any point leaves the final name holding the
# previous file (or nothing), and the next build removes the stale temporary.
. "$SAGE_TOP/tests/lib/tap.sh"

# A corpus large enough that writing it takes a noticeable time.
make_big() {
    mkdir -p big && for i in 1 2 3 4; do
        head -c 18M /dev/urandom | base64 -w 76 > big/part$i.txt || return 1
    done
}
tmp_exists() { compgen -G 'out/.idx.sage.tmp.*' >/dev/null; }

t_ok 'kill -9 during a build keeps the previous file and the next build cleans up' '
    make_big && mkdir out && printf "generation one\n" > one.txt &&
    sage-indexer build --out out/idx.sage one.txt && sum1=$(sha256sum < out/idx.sage) &&
    { sage-indexer build --out out/idx.sage big & pid=$!; } &&
    t_wait 60 tmp_exists && kill -9 $pid && { wait $pid; [ $? = 137 ]; } &&
    [ "$(sha256sum < out/idx.sage)" = "$sum1" ] && tmp_exists &&
    sage-indexer verify out/idx.sage &&
    sage-indexer build --out out/idx.sage one.txt && ! tmp_exists'

t_ok 'kill -9 of a first build leaves no file under the final name' '
    make_big && mkdir out &&
    { sage-indexer build --out out/idx.sage big & pid=$!; } &&
    t_wait 60 tmp_exists && kill -9 $pid && { wait $pid; [ $? = 137 ]; } &&
    [ ! -e out/idx.sage ] && [ ! -e out/idx.sage.sha256 ]'

t_ok 'failed build (unwritable directory) leaves nothing behind' '
    mkdir ro && printf "x\n" > a.txt && chmod 555 ro &&
    if [ "$(id -u)" = 0 ]; then
        # root ignores permissions: use a path whose parent is a file instead
        t_status 1 sage-indexer build --out a.txt/idx.sage a.txt
    else
        t_status 1 sage-indexer build --out ro/idx.sage a.txt
    fi && grep -q "cannot create a temporary file" err && [ -z "$(ls -A ro)" ]'

t_done
