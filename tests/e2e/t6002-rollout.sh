#!/usr/bin/env bash
# Blue-green rollout across two search hosts: generation 1 is published to an
# rsync daemon and fetched by two hosts (two searchd processes, each with its
# own index directory); generation 2 is published and fetched by both, which
# then serve it; one host rolls back with scripts/swap --rollback and serves
# generation 1 again, and a later fetch does not undo the rollback; a damaged
# published file is refused by fetch-index and never reaches searchd. Clients
# query both hosts throughout: not one request fails, and every answer comes
# from one generation (the hammer checks the library each generation has).
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/corpus.sh"
. "$SAGE_TOP/tests/lib/dist.sh"
PUBLISH=$SAGE_TOP/scripts/publish
FETCH=$SAGE_TOP/scripts/fetch-index
SWAP=$SAGE_TOP/scripts/swap
W=$T_ROOT/ro
mkdir -p "$W/ixA" "$W/ixB"
RATE=${T6002_RATE:-200}     # requests a second per host, all clients together

url() { echo "http://127.0.0.1:$(cat "$W/$1.port")"; }

start_searchd() {
    local tag=$1 dir=$2
    { sage-searchd --index-dir "$dir" --listen 127.0.0.1:0 --port-file "$W/$tag.port" \
          --poll-ms 200 --threads 8 2>"$W/$tag.log" &
      echo $! >"$W/$tag.pid"
      wait $!
      echo $? >"$W/$tag.rc"; } &
    t_wait 10 test -s "$W/$tag.pid" && t_daemon "$(cat "$W/$tag.pid")" &&
    t_wait 10 test -s "$W/$tag.port" && t_wait 10 curl -sf -o /dev/null "$(url "$tag")/readyz"
}

# "GENERATION LIBRARY" host $1 answers with for the query.
serves() {
    curl -sf "$(url "$1")/v1/search?q=alphaword+betaword&k=3" | jq -r '"\(.generation) \(.hits[0].library)"'
}

failed_reloads() {
    curl -sf "$(url "$1")/metrics" | awk '$1 == "sage_reloads_total{result=\"failed\"}" { print $2 }'
}

hammer_clean() {
    cat "$W/$1.hammer.json" "$W/$1.hammer.err" &&
    [ "$(cat "$W/$1.hammer.rc")" = 0 ] &&
    jq -e ".requests > 100 and .non_200 == 0 and .errors == 0 and .inconsistent == 0" \
        "$W/$1.hammer.json"
}

start_hammer() {
    local tag=$1
    { hammer --port "$(cat "$W/$tag.port")" --threads 4 --rate "$RATE" --odd a --even b \
          --stop "$W/stop" --path "/v1/search?q=alphaword+betaword&index=docs&snippets=0" \
          --started "$W/$tag.started" --seconds 300 >"$W/$tag.hammer.json" 2>"$W/$tag.hammer.err" &
      echo $! >"$W/$tag.hammer.pid"; wait $!; echo $? >"$W/$tag.hammer.rc"; } &
    t_wait 10 test -e "$W/$tag.started"
}

t_ok 'two generations build; generation 1 is published and fetched by both hosts' '
    mkdir a b && corpus 1 400 alphaword >a/a.jsonl && corpus 2 400 betaword >b/b.jsonl &&
    sage-indexer build -q --out "$W/g1.sage" --library a=a &&
    sage-indexer build -q --out "$W/g2.sage" --library b=b &&
    rsyncd_start "$W/rs" && echo "$RS_URL" >"$W/rs.url" &&
    "$PUBLISH" "$W/g1.sage" "$RS_URL" --name docs &&
    "$FETCH" "$RS_URL" "$W/ixA" --name docs --no-wait &&
    "$FETCH" "$RS_URL" "$W/ixB" --name docs --no-wait'

t_ok 'both hosts start and serve generation 1' '
    start_searchd A "$W/ixA" && start_searchd B "$W/ixB" &&
    [ "$(serves A)" = "1 a" ] && [ "$(serves B)" = "1 a" ] &&
    curl -sf "$(url A)/v1/indexes" | jq -e ".indexes[0].verified == \"stamp\""'

t_ok 'clients query both hosts' 'start_hammer A && start_hammer B'

t_ok 'generation 2 is published, fetched by both hosts, and served' '
    url=$(cat "$W/rs.url") && "$PUBLISH" "$W/g2.sage" "$url" --name docs &&
    "$FETCH" "$url" "$W/ixA" --name docs --url "$(url A)" --timeout 20 &&
    "$FETCH" "$url" "$W/ixB" --name docs --url "$(url B)" --timeout 20 &&
    [ "$(serves A)" = "2 b" ] && [ "$(serves B)" = "2 b" ]'

t_ok 'host A rolls back to generation 1; fetching again does not undo it' '
    "$SWAP" --rollback docs --index-dir "$W/ixA" --url "$(url A)" --timeout 20 &&
    [ "$(serves A)" = "3 a" ] && [ "$(serves B)" = "2 b" ] &&
    "$FETCH" "$(cat "$W/rs.url")" "$W/ixA" --name docs --url "$(url A)" >out && cat out &&
    grep -q "not serving it again" out && [ "$(serves A)" = "3 a" ]'

t_ok 'a damaged published file never reaches searchd' '
    url=$(cat "$W/rs.url") && "$PUBLISH" "$W/g1.sage" "$url" --name docs &&
    before=$(failed_reloads B) &&
    printf "\x55" | dd of="$W/rs/pub/docs.000003.sage" bs=1 seek=5000 conv=notrunc 2>/dev/null &&
    t_status 1 "$FETCH" "$url" "$W/ixB" --name docs --url "$(url B)" && grep -q refused err &&
    [ "$(serves B)" = "2 b" ] && [ "$(failed_reloads B)" = "$before" ] &&
    [ "$(readlink "$W/ixB/docs")" = "$W/ixB/.sage-fetch/docs.000002.sage" ]'

t_ok 'not one request failed, every answer from one generation' '
    touch "$W/stop" && t_wait 20 test -s "$W/A.hammer.rc" && t_wait 20 test -s "$W/B.hammer.rc" &&
    hammer_clean A && hammer_clean B &&
    jq -e ".generation_max == 3 and .swaps_seen >= 2" "$W/A.hammer.json" &&
    jq -e ".generation_max == 2 and .swaps_seen >= 1" "$W/B.hammer.json"'
# a hammer that has exited is not killed later (its PID may be another's)
for h in A B; do
    [ -e "$W/$h.hammer.rc" ] || T_PIDS="$T_PIDS $(cat "$W/$h.hammer.pid" 2>/dev/null)"
done
t_done
