#!/usr/bin/env bash
# Hot swap: searchd over an index directory whose NAME symlink is swapped 200
# times (scripts/swap) between two real indexes while 8 clients query without
# a pause, with corrupt, truncated and wrong-version files dropped in between:
# no failed request, every answer from one generation, new files served within
# 1 s of their rename, no memory growth. Then dot and .tmp files, removal,
# the poll fallback, SIGHUP, POST /v1/admin/reload, --rollback and SIGTERM.
# Steps share one searchd; its files live in $W, which the EXIT trap keeps
# on failure.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/corpus.sh"
SWAP=$SAGE_TOP/scripts/swap
ADMIN=t3001-admin-key
W=$T_ROOT/hs
mkdir -p "$W/files" "$W/idx" "$W/idx2" "$W/elsewhere"
# An index that leaks a snapshot per swap keeps its mapping (1.3 MB, all of it
# resident after verification): 180 swaps would add over 200 MB. Allocator
# noise (arenas of 16 workers, ASan's quarantine) stays well under 20 MB.
RSS_SLACK_KB=20480
# Requests a second from the 8 clients together, about a fifth of two cores.
# Unpaced, they take all of a small machine and starve the swaps themselves;
# paced, some 30 requests still arrive while each new file loads.
RATE=${T3001_RATE:-800}

url() { echo "http://127.0.0.1:$(cat "$W/$1.port")"; }
pid() { cat "$W/$1.pid"; }

# Starts searchd TAG over DIR, rescanning every POLL_MS, and waits until it
# is ready. Its PID goes to $W/TAG.pid, its exit status to $W/TAG.rc.
start_searchd() {
    local tag=$1 dir=$2 poll=$3
    { sage-searchd --index-dir "$dir" --listen 127.0.0.1:0 --port-file "$W/$tag.port" \
          --poll-ms "$poll" --threads 16 --admin-key "$ADMIN" 2>"$W/$tag.log" &
      echo $! >"$W/$tag.pid"
      wait $!
      echo $? >"$W/$tag.rc"; } &
    t_wait 10 test -s "$W/$tag.port" && t_wait 10 curl -sf -o /dev/null "$(url "$tag")/readyz"
}

# "GENERATION FILE" of index NAME in searchd TAG ("0 -" when not loaded).
served() {
    curl -sf "$(url "$1")/v1/indexes" |
        jq -er --arg n "$2" '(.indexes[] | select(.name == $n) | "\(.generation) \(.file)") // "0 -"'
}
is_served() { [ "$(served "$1" "$2")" = "$3" ]; }
failed_reloads() {
    curl -sf "$(url "$1")/metrics" | awk '/^sage_reloads_total\{result="failed"\}/ { print $2 }'
}
failed_is() { [ "$(failed_reloads "$1")" = "$2" ]; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$(pid "$1")/status"; }
# Mappings of index files in searchd TAG.
mapped() { grep -c " $W/files/" "/proc/$(pid "$1")/maps"; }
status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# Replaces symlink $1 by one to $2 atomically, as scripts/swap does.
relink() { ln -sfn "$2" "$(dirname "$1")/.relink.tmp" && mv -fT "$(dirname "$1")/.relink.tmp" "$1"; }

# 200 swaps b, a, b, ... (generation 2k from b, 2k+1 from a: the parity the
# hammer checks). Before every 20th, a bad file goes in: by a bare symlink
# (refused, the link stays on it until the next swap) or by scripts/swap
# (refused and put back). Writes swaps.ms (rename to serving, per swap) and
# rss20/rss200 (searchd's VmRSS after 20 and 200 swaps). The hammer is told
# to stop however the loop ends.
swap_loop() {
    swaps
    local rc=$?
    touch "$W/stop"
    return $rc
}
swaps() {
    local u i d=0 next bad failed kinds=(corrupt short v2)
    u=$(url main)
    failed=$(failed_reloads main)
    for i in $(seq 1 200); do
        if [ $((i % 20)) = 10 ]; then
            bad=$W/files/${kinds[d % 3]}.sage
            if [ $((d % 2)) = 0 ]; then
                relink "$W/idx/docs" "$bad" && t_wait 5 failed_is main $((failed + 1)) ||
                    { echo "swap $i: '$bad' was not refused"; return 1; }
            else
                t_status 1 "$SWAP" docs "$bad" -d "$W/idx" -u "$u" -t 5 && grep -q refused err &&
                    [ "$(readlink "$W/idx/docs")" != "$bad" ] || { echo "swap $i: no refusal"; return 1; }
            fi
            is_served main docs "$i $W/files/$([ $((i % 2)) = 1 ] && echo a || echo b).sage" ||
                { echo "swap $i: generation $i is not serving after the refusal"; return 1; }
            failed=$((failed + 1))
            d=$((d + 1))
        fi
        next=$([ $((i % 2)) = 1 ] && echo b || echo a)
        "$SWAP" docs "$W/files/$next.sage" -d "$W/idx" -u "$u" -t 1 >out ||
            { echo "swap $i to $next failed"; return 1; }
        grep -q "serves generation $((i + 1)) from '$W/files/$next.sage'" out ||
            { echo "swap $i:"; cat out; return 1; }
        sed -n 's/.*, \([0-9]*\) ms after the rename$/\1/p' out >>"$W/swaps.ms"
        [ "$i" != 20 ] || rss_kb main >"$W/rss20"
    done
    rss_kb main >"$W/rss200" && echo "$d" >"$W/bad_drops"
}

hammer_field() { jq -e ".$1" "$W/hammer.json"; }

t_ok 'two indexes build; searchd serves NAME through its symlink' '
    corpus 1 3000 alphaword > a.jsonl && corpus 2 3000 betaword > b.jsonl &&
    mkdir a b && mv a.jsonl a/ && mv b.jsonl b/ &&
    sage-indexer build -q --out "$W/files/a.sage" --library a=a &&
    sage-indexer build -q --out "$W/files/b.sage" --library b=b &&
    cp "$W/files/a.sage" "$W/files/corrupt.sage" &&
    corrupt_section "$W/files/corrupt.sage" chunk_text 40 x01 &&
    head -c $(($(stat -c %s "$W/files/b.sage") / 2)) "$W/files/b.sage" > "$W/files/short.sage" &&
    cp "$W/files/b.sage" "$W/files/v2.sage" &&
    corrupt_section --rehash "$W/files/v2.sage" header 8 0200 &&
    ln -s "$W/files/a.sage" "$W/idx/docs" &&
    start_searchd main "$W/idx" 200 &&
    is_served main docs "1 $W/files/a.sage" &&
    curl -sf "$(url main)/v1/search?q=alphaword+betaword" | jq -e ".hits[0].library == \"a\""'
T_PIDS="$T_PIDS $(cat "$W/main.pid" 2>/dev/null)"

t_ok 'dot files and *.tmp are never loaded' '
    cp "$W/files/b.sage" "$W/idx/fresh.sage.tmp" && cp "$W/files/b.sage" "$W/idx/.hidden.sage" &&
    ln -s "$W/files/b.sage" "$W/idx/.docs.swap.123" && ln -s "$W/files/b.sage" "$W/idx/other.tmp" &&
    curl -sf -X POST -H "Authorization: Bearer $ADMIN" "$(url main)/v1/admin/reload" > r.json &&
    jq -e ".changes == 0 and .ready" r.json &&
    curl -sf "$(url main)/v1/indexes" | jq -e "[.indexes[].name] == [\"docs\"]" &&
    failed_is main 0'

t_ok 'hot swap under load: 200 swaps, 8 clients, bad files refused' '
    { hammer --port "$(cat "$W/main.port")" --threads 8 --rate "$RATE" --odd a --even b --stop "$W/stop" \
          --path "/v1/search?q=alphaword+betaword&index=docs&snippets=0" \
          --started "$W/started" --seconds 600 > "$W/hammer.json" 2> "$W/hammer.err" &
      echo $! > "$W/hammer.pid"; wait $!; echo $? > "$W/hammer.rc"; } &
    t_wait 10 test -e "$W/started" && swap_loop &&
    t_wait 10 test -s "$W/hammer.rc" && cat "$W/hammer.json" "$W/hammer.err" &&
    [ "$(cat "$W/hammer.rc")" = 0 ] &&
    hammer_field "non_200 == 0 and .errors == 0 and .inconsistent == 0" &&
    hammer_field "generation_min == 1 and .generation_max == 201 and .swaps_seen > 0" &&
    is_served main docs "201 $W/files/a.sage" &&
    failed_is main "$(cat "$W/bad_drops")" && [ "$(cat "$W/bad_drops")" = 10 ]'
# a process that has exited is not killed later: its PID may be another's by then
[ -e "$W/hammer.rc" ] || T_PIDS="$T_PIDS $(cat "$W/hammer.pid" 2>/dev/null)"

t_ok 'each new file served within 1 s of its rename' '
    [ "$(wc -l < "$W/swaps.ms")" = 200 ] && sort -n "$W/swaps.ms" | tail -n 1 > max &&
    [ "$(cat max)" -lt 1000 ]'

t_ok 'memory: RSS flat across swaps, one index mapping left' '
    echo "rss after 20 swaps $(cat "$W/rss20") kB, after 200 $(cat "$W/rss200") kB" &&
    [ "$(cat "$W/rss200")" -le $(($(cat "$W/rss20") * 3 / 2 + RSS_SLACK_KB)) ] &&
    t_wait 5 test "$(mapped main)" = 1'

t_ok 'removing an index file unloads it; the poll fallback sees changes inotify cannot' '
    cp "$W/files/b.sage" "$W/files/live.sage" && ln -s "$W/files/live.sage" "$W/idx/live" &&
    cp "$W/files/a.sage" "$W/idx/extra.sage" &&
    t_wait 2 is_served main live "1 $W/files/live.sage" &&
    t_wait 2 is_served main extra "1 $W/idx/extra.sage" &&
    cp "$W/files/a.sage" "$W/files/live.sage.new" && mv -T "$W/files/live.sage.new" "$W/files/live.sage" &&
    t_wait 2 is_served main live "2 $W/files/live.sage" &&
    curl -sf "$(url main)/v1/search?q=alphaword&index=live" | jq -e ".generation == 2 and .hits[0].library == \"a\"" &&
    rm "$W/idx/extra.sage" "$W/idx/live" &&
    t_wait 2 is_served main extra "0 -" && t_wait 2 is_served main live "0 -" &&
    [ "$(status_of "$(url main)/v1/search?q=alphaword&index=extra")" = 404 ] &&
    [ "$(status_of "$(url main)/v1/search?q=alphaword&index=live")" = 404 ] &&
    curl -sf "$(url main)/v1/indexes" | jq -e "[.indexes[].name] == [\"docs\"]" &&
    curl -sf "$(url main)/readyz"'

t_ok 'SIGHUP and POST /v1/admin/reload rescan (no inotify event, no poll for an hour)' '
    cp "$W/files/a.sage" "$W/files/hup.sage" && ln -s "$W/files/hup.sage" "$W/idx2/doc" &&
    start_searchd hup "$W/idx2" 3600000 && is_served hup doc "1 $W/files/hup.sage" &&
    cp "$W/files/b.sage" "$W/files/hup.new" && mv -T "$W/files/hup.new" "$W/files/hup.sage" &&
    is_served hup doc "1 $W/files/hup.sage" &&
    kill -HUP "$(pid hup)" && t_wait 2 is_served hup doc "2 $W/files/hup.sage" &&
    cp "$W/files/a.sage" "$W/files/hup.new" && mv -T "$W/files/hup.new" "$W/files/hup.sage" &&
    [ "$(status_of -X POST "$(url hup)/v1/admin/reload")" = 401 ] &&
    [ "$(status_of -X POST -H "Authorization: Bearer nope" "$(url hup)/v1/admin/reload")" = 403 ] &&
    is_served hup doc "2 $W/files/hup.sage" &&
    curl -sf -X POST -H "Authorization: Bearer $ADMIN" "$(url hup)/v1/admin/reload" > r.json &&
    jq -e ".changes == 1 and .ready" r.json && is_served hup doc "3 $W/files/hup.sage" &&
    kill -TERM "$(pid hup)" && t_wait 10 test -s "$W/hup.rc" && [ "$(cat "$W/hup.rc")" = 0 ]'
[ -e "$W/hup.rc" ] || T_PIDS="$T_PIDS $(cat "$W/hup.pid" 2>/dev/null)"

t_ok 'scripts/swap: --rollback, refusal put back, loud timeout, usage' '
    u=$(url main) &&
    "$SWAP" docs "$W/files/b.sage" --index-dir "$W/idx" --url "$u" --timeout 2 &&
    is_served main docs "202 $W/files/b.sage" &&
    [ "$(readlink "$W/idx/docs.previous")" = "$W/files/a.sage" ] &&
    "$SWAP" --rollback docs --index-dir "$W/idx" --url "$u" --timeout 2 > out &&
    grep -q "serves generation 203 from .$W/files/a.sage." out &&
    [ "$(readlink "$W/idx/docs")" = "$W/files/a.sage" ] &&
    [ "$(readlink "$W/idx/docs.previous")" = "$W/files/b.sage" ] &&
    t_status 1 "$SWAP" docs "$W/files/corrupt.sage" -d "$W/idx" -u "$u" -t 2 &&
    grep -q "refused .*still serves generation 203" err &&
    [ "$(readlink "$W/idx/docs")" = "$W/files/a.sage" ] &&
    [ "$(readlink "$W/idx/docs.previous")" = "$W/files/b.sage" ] &&
    t_status 1 "$SWAP" docs "$W/files/b.sage" -d "$W/elsewhere" -u "$u" -t 0.3 &&
    grep -q "timed out after 0.3 s" err && grep -q -- "--rollback docs" err &&
    t_status 1 "$SWAP" docs "$W/files/b.sage" -d "$W/idx" -u http://127.0.0.1:1 -t 1 &&
    grep -q "nothing changed" err && [ "$(readlink "$W/idx/docs")" = "$W/files/a.sage" ] &&
    t_status 2 "$SWAP" docs && t_status 2 "$SWAP" bad.name "$W/files/a.sage" -d "$W/idx" &&
    "$SWAP" --help | grep -q "usage: scripts/swap NAME FILE"'

t_ok 'a NAME.sage of another file does not take turns with the NAME symlink' '
    before=$(served main docs) && cp "$W/files/b.sage" "$W/idx/docs.sage" &&
    for _ in 1 2 3; do
        curl -sf -X POST -H "Authorization: Bearer $ADMIN" "$(url main)/v1/admin/reload" > r.json &&
        jq -e ".changes == 0" r.json || exit 1
    done &&
    [ "$(served main docs)" = "$before" ] &&
    grep -q "ignoring .$W/idx/docs.sage. as index .docs." "$W/main.log" && rm "$W/idx/docs.sage"'

t_ok 'searchd is still up after all that and exits 0 on SIGTERM' '
    curl -sf "$(url main)/healthz" && kill -TERM "$(pid main)" &&
    t_wait 10 test -s "$W/main.rc" && [ "$(cat "$W/main.rc")" = 0 ]'

if [ -s "$W/hammer.json" ]; then
    echo "# hammer: $(cat "$W/hammer.json")"
    echo "# swap to serve (ms, scripts/swap's view): $(sort -n "$W/swaps.ms" |
        awk '{ v[NR] = $1 } END { if (NR) printf "median %d, max %d over %d swaps", v[int((NR + 1) / 2)], v[NR], NR }')"
    echo "# VmRSS: $(cat "$W/rss20" 2>/dev/null) kB after 20 swaps, $(cat "$W/rss200" 2>/dev/null) kB after 200"
fi
t_done
