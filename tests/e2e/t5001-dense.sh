#!/usr/bin/env bash
# Dense and hybrid search through sage-searchd with the fake GPU server as
# the query embedder: hybrid is the default and ranks the document whose
# words the query holds first in both legs, with per-leg ranks and scores;
# dense and a raw vector POST agree with each other and with
# `sage-indexer query`; then the embedder is killed: hybrid answers 200 from
# BM25 with "degraded", /metrics counts it, mode=dense is a 503 with a stable
# code, the circuit breaker opens (fast answers, one log line) and closes
# again once the server is back on the same port. A searchd whose embedder
# has another dimension, or another model, refuses to start; an index swapped
# in with another model is refused while the old one keeps serving.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/fakegpu.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
C=$T_ROOT/corpus
IX=$T_ROOT/ix
LEX=$T_ROOT/lex
mkdir -p "$C/cook" "$C/birds" "$IX" "$LEX"
printf '# Sourdough bread\n\nA sourdough starter is a culture of wild yeast and lactobacilli. Feed the starter with flour and water, let the dough ferment overnight, then bake the loaf in a hot oven.\n' >"$C/cook/sourdough.md"
printf '# Tomato soup\n\nRoast tomatoes with garlic and onions, simmer them in stock, and blend the soup until smooth. Season with basil and a little cream.\n' >"$C/cook/soup.md"
printf '# Kestrel hunting\n\nThe kestrel hovers above meadows and dives on voles and beetles. Falcons of this kind nest on cliffs and in old buildings.\n' >"$C/birds/kestrel.md"
printf '# Owl calls\n\nTawny owls call at night with a long hoot; barn owls screech. Owls swallow their prey whole and cough up pellets.\n' >"$C/birds/owl.md"
printf '# Heron fishing\n\nThe grey heron stands still in shallow water and spears fish with its beak. Herons breed in colonies called heronries.\n' >"$C/birds/heron.md"

DIM=256
# build OUT [ARGS...]: the corpus with embeddings from the fake server at $FG_URL
build() {
    local out=$1
    shift
    sage-indexer build -q --out "$out" --library cook="$C/cook" --library birds="$C/birds" \
        --embed-url "$FG_URL" --embed-query-prefix "search_query: " \
        --embed-doc-prefix "search_document: " "$@"
}

# The fake server of the whole file, on a port it keeps across a restart.
fg_start "$T_ROOT/fg" --dim $DIM >"$T_ROOT/fg-start.log" 2>&1
FG0_PID=$FG_PID FG0_URL=$FG_URL FG0_PORT=$FG_PORT
{
    build "$IX/docs.sage" --embed-model fake &&
    sage-indexer build -q --out "$LEX/lex.sage" --library cook="$C/cook"
} >"$T_ROOT/build.log" 2>&1
sd_start "$T_ROOT/sd" "$IX" --embed-url "$FG0_URL" --embed-timeout-ms 1000 \
    --embed-breaker-failures 2 --embed-breaker-cooldown-ms 1500 --poll-ms 100 \
    >"$T_ROOT/sd-start.log" 2>&1
LOG=$T_ROOT/sd/searchd.log

# The value of sample $1 (a metric name with labels) in exposition file $2.
metric() {
    grep -v '^#' "$2" | grep -F "$1 " | awk '{ print $NF }'
}
# The embedding of "search_query: TEXT" as the fake server computes it.
fake_vector() {
    curl -sS --max-time 10 -H 'Content-Type: application/json' \
        -d "{\"model\": \"fake\", \"input\": [\"search_query: $1\"]}" "$FG0_URL/v1/embeddings" |
        jq -c '.data[0].embedding'
}

t_ok 'searchd starts with the fake embedder bound to the index settings' '
    cat "$T_ROOT/fg-start.log" "$T_ROOT/build.log" "$T_ROOT/sd-start.log" &&
    grep -q "embed-url=$FG0_URL " "$LOG" && grep -q "serving index .docs. generation 1" "$LOG" &&
    grep -q "listening on port $SD_PORT, ready" "$LOG" && ! grep -q "warning" "$LOG"'

t_ok 'hybrid is the default: the right document first in both legs, RRF scores exact' '
    sd_expect 200 r.json "/v1/search?q=sourdough+starter&snippets=0" &&
    jq -e ".mode == \"hybrid\" and (has(\"degraded\") | not) and
        .fusion == {\"method\": \"rrf\", \"k\": 60, \"w_bm25\": 1, \"w_dense\": 1} and
        (.hits | length) == 5 and .hits[0].path == \"sourdough.md\" and
        .hits[0].bm25.rank == 1 and .hits[0].bm25.score > 0 and
        .hits[0].dense.rank == 1 and .hits[0].dense.score > 0 and
        (.hits[0].score - 2 / 61 | fabs) < 1e-12 and
        (.hits[1].bm25 == null) and .hits[1].dense.rank == 2 and
        (.hits[1].score - 1 / 62 | fabs) < 1e-12" r.json'

t_ok 'mode=dense: the nearest vectors, no BM25 leg; each query finds its document' '
    for q in "sourdough+starter:sourdough.md" "owls+hoot+at+night:owl.md" \
             "heron+fish:heron.md" "tomato+soup+garlic:soup.md"; do
        sd_expect 200 r.json "/v1/search?q=${q%%:*}&mode=dense&snippets=0" &&
        jq -e --arg p "${q#*:}" ".mode == \"dense\" and .total == 5 and .hits[0].path == \$p and
            .hits[0].bm25 == null and .hits[0].dense.rank == 1 and
            .hits[0].score == .hits[0].dense.score and
            ([.hits[].dense.score] | . == (sort | reverse))" r.json || return 1
    done'

t_ok 'fusion=convex with weights: min-max normalized, BM25-only weight keeps BM25 order' '
    sd_expect 200 c.json "/v1/search?q=sourdough+starter&fusion=convex&w_dense=0.5&snippets=0" &&
    jq -e ".fusion == {\"method\": \"convex\", \"w_bm25\": 1, \"w_dense\": 0.5} and
        .hits[0].path == \"sourdough.md\" and .hits[0].score == 1 and
        ([.hits[].score] | all(. >= 0 and . <= 1))" c.json &&
    sd_expect 200 b.json "/v1/search?q=owls+night&fusion=convex&w_dense=0&snippets=0" &&
    sd_expect 200 p.json "/v1/search?q=owls+night&mode=bm25&snippets=0" &&
    jq -e ".hits[0].path == \"owl.md\" and .hits[0].score == 1 and .hits[0].bm25.rank == 1" b.json &&
    jq -e "(.mode == \"bm25\") and (.hits[0] | has(\"bm25\") | not)" p.json'

t_ok 'library filter applies to the dense leg before the top k' '
    sd_expect 200 r.json "/v1/search?q=sourdough+starter&mode=dense&library=birds&snippets=0" &&
    jq -e ".total == 3 and (.hits | length) == 3 and
        ([.hits[].library] | all(. == \"birds\"))" r.json &&
    sd_expect 200 r2.json "/v1/search?q=library:cook+owls&mode=dense&snippets=0" &&
    jq -e ".total == 2 and ([.hits[].library] | unique) == [\"cook\"]" r2.json'

t_ok 'a raw vector POST ranks as the embedded query does' '
    v=$(fake_vector "heron fish") && [ "$(jq length <<<"$v")" = $DIM ] &&
    sd_expect 200 g.json "/v1/search?q=heron+fish&mode=dense&snippets=0" &&
    sd_expect 200 v.json /v1/search -H "Content-Type: application/json" \
        -d "{\"vector\": $v, \"mode\": \"dense\", \"snippets\": false}" &&
    [ "$(jq -c "[.hits[] | [.chunk, .dense.rank]]" g.json)" = \
      "$(jq -c "[.hits[] | [.chunk, .dense.rank]]" v.json)" ] &&
    jq -e ".query == \"\" and .hits[0].path == \"heron.md\"" v.json &&
    sd_expect 200 h.json /v1/search -H "Content-Type: application/json" \
        -d "{\"q\": \"heron\", \"vector\": $v, \"k\": 2}" &&
    jq -e ".mode == \"hybrid\" and .hits[0].path == \"heron.md\" and .hits[0].bm25.rank == 1 and
        .hits[0].dense.rank == 1" h.json'

t_ok 'sage-indexer query ranks as searchd does (dense and hybrid)' '
    for m in dense hybrid; do
        sage-indexer query --json --mode $m --embed-url "$FG0_URL" "$IX/docs.sage" owls hoot >o.json &&
        sd_expect 200 s.json "/v1/search?q=owls+hoot&mode=$m&snippets=0" &&
        [ "$(jq -c "[.results[] | [.chunk, .score, .bm25, .dense]]" o.json)" = \
          "$(jq -c "[.hits[] | [.chunk, .score, .bm25, .dense]]" s.json)" ] || return 1
    done &&
    sage-indexer query --mode hybrid --embed-url "$FG0_URL" "$IX/docs.sage" owls >t.txt &&
    grep -q "bm25: #1" t.txt && grep -q "dense: #1" t.txt'

t_ok 'bad requests: wrong dimension, vector with bm25, bad names, non-numbers: 400' '
    sd_error 400 bad_vector /v1/search -H "Content-Type: application/json" \
        -d "{\"vector\": [0.5, 0.25], \"mode\": \"dense\"}" &&
    sd_error 400 bad_request /v1/search -d "{\"vector\": [1, 2], \"mode\": \"bm25\"}" &&
    sd_error 400 bad_vector /v1/search -d "{\"vector\": [1, \"x\"]}" &&
    sd_error 400 bad_vector /v1/search -d "{\"vector\": []}" &&
    sd_error 400 bad_vector /v1/search -d "{\"vector\": [1e300]}" &&
    sd_error 400 bad_request "/v1/search?q=owl&mode=semantic" &&
    sd_error 400 bad_request "/v1/search?q=owl&fusion=max" &&
    sd_error 400 bad_request "/v1/search?q=owl&w_bm25=-1" &&
    sd_error 400 bad_request "/v1/search?q=owl&w_bm25=0&w_dense=0" &&
    sd_error 400 bad_request "/v1/search?q=owl&oversample=0" &&
    sd_error 400 bad_request /v1/search -d "{\"q\": \"owl\", \"w_dense\": \"1\"}"'

t_ok 'an index without vectors: bm25 by default, mode=dense is a 400' '
    sd_start sd2 "$LEX" --embed-url "$FG0_URL" &&
    sd_expect 200 r.json "/v1/search?q=sourdough" &&
    jq -e ".mode == \"bm25\" and (.hits[0] | has(\"dense\") | not)" r.json &&
    sd_error 400 no_vectors "/v1/search?q=sourdough&mode=dense" &&
    sd_error 400 no_vectors "/v1/search?q=sourdough&mode=hybrid" && sd_stop'

t_ok 'without --embed-url: bm25 by default, a raw vector still works, dense by text is a 400' '
    sd_start sd3 "$IX" &&
    sd_expect 200 r.json "/v1/search?q=sourdough" && jq -e ".mode == \"bm25\"" r.json &&
    v=$(fake_vector "owls") &&
    sd_expect 200 v.json /v1/search -d "{\"vector\": $v, \"mode\": \"dense\"}" &&
    jq -e ".hits[0].path == \"owl.md\"" v.json &&
    sd_error 400 no_embedder "/v1/search?q=owls&mode=dense" &&
    sd_expect 200 h.json "/v1/search?q=owls&mode=hybrid" &&
    jq -e ".degraded.reason == \"no_embedder\" and .hits[0].bm25.rank == 1" h.json && sd_stop'

t_ok 'repeated queries come from the cache' '
    curl -sS --max-time 10 "$SD_URL/metrics" >m0 &&
    sd_expect 200 r.json "/v1/search?q=sourdough+starter&mode=dense" &&
    curl -sS --max-time 10 "$SD_URL/metrics" >m1 &&
    [ "$(metric "sage_embed_cache_total{result=\"hit\"}" m1)" -gt \
      "$(metric "sage_embed_cache_total{result=\"hit\"}" m0)" ] &&
    [ "$(metric "sage_embed_requests_total{result=\"ok\"}" m1)" = \
      "$(metric "sage_embed_requests_total{result=\"ok\"}" m0)" ]'

t_ok 'concurrent queries are embedded at once, not one after another' '
    fg_start fgslow --dim $DIM --latency-ms 400 &&
    sd_start sd4 "$IX" --embed-url "$FG_URL" --embed-timeout-ms 5000 &&
    t0=$(date +%s%N) &&
    pids="" &&
    for i in 1 2 3 4 5 6; do
        curl -sS --max-time 10 -o "r$i.json" "$SD_URL/v1/search?q=slow+query+$i&mode=dense" &
        pids="$pids $!"
    done &&
    for p in $pids; do wait "$p" || return 1; done &&
    ms=$(( ($(date +%s%N) - t0) / 1000000 )) && echo "6 queries in $ms ms" &&
    for i in 1 2 3 4 5 6; do jq -e ".mode == \"dense\" and (.hits | length) == 5" "r$i.json" ||
        return 1; done &&
    [ "$ms" -lt 1800 ] && sd_stop && fg_stop'

t_ok 'embedder killed: hybrid degrades to BM25 with 200, dense is a 503, breaker opens' '
    kill "$FG0_PID" && t_wait 20 t_gone "$FG0_PID" &&
    sd_expect 200 d1.json "/v1/search?q=heron+beak" &&
    jq -e ".mode == \"hybrid\" and .degraded.reason == \"embedder_unavailable\" and
        (.degraded.message | length) > 0 and .hits[0].path == \"heron.md\" and
        .hits[0].bm25.rank == 1 and .hits[0].dense == null" d1.json &&
    sd_error 503 embedder_unavailable "/v1/search?q=kestrel+voles&mode=dense" &&
    for i in 1 2 3 4 5; do
        t=$(curl -sS --max-time 10 -o d2.json -w "%{http_code} %{time_total}" \
            "$SD_URL/v1/search?q=owls+pellets+$i") &&
        [ "${t%% *}" = 200 ] && awk -v t="${t#* }" "BEGIN { exit !(t < 0.5) }" &&
        jq -e ".degraded.reason == \"circuit_open\" and .hits[0].path == \"owl.md\"" d2.json ||
        return 1
    done &&
    curl -sS --max-time 10 "$SD_URL/metrics" >m &&
    [ "$(metric "sage_degraded_total{reason=\"embedder_unavailable\"}" m)" -ge 1 ] &&
    [ "$(metric "sage_degraded_total{reason=\"circuit_open\"}" m)" -ge 5 ] &&
    [ "$(metric sage_embed_breaker_opens_total m)" -ge 1 ] &&
    [ "$(metric sage_embed_breaker_state m)" = 1 ] &&
    [ "$(grep -c "query embedding failed" "$LOG")" = 1 ] &&
    ! grep -q "status=\"5[0-9][0-9]\"" <(grep -v "status=\"503\"" m) &&
    [ "$(metric "sage_requests_total{route=\"search\",status=\"503\"}" m)" = 1 ]'

t_ok 'the embedder back on its port: the breaker closes after the cool-down' '
    fg_start fg --dim $DIM --port "$FG0_PORT" && [ "$FG_URL" = "$FG0_URL" ] &&
    ok() {
        curl -sS --max-time 10 "$SD_URL/v1/search?q=grey+heron+water&snippets=0" >r.json &&
        jq -e "(has(\"degraded\") | not) and .hits[0].dense.rank == 1" r.json >/dev/null
    } &&
    t_wait 20 ok &&
    curl -sS --max-time 10 "$SD_URL/metrics" >m && [ "$(metric sage_embed_breaker_state m)" = 0 ] &&
    sd_expect 200 d.json "/v1/search?q=kestrel+voles&mode=dense" &&
    jq -e ".hits[0].path == \"kestrel.md\"" d.json'

t_ok 'an embedder of another dimension: searchd refuses to start, naming both' '
    fg_start fg2 --dim 128 &&
    t_status 1 timeout 30 sage-searchd --index-dir "$IX" --listen 127.0.0.1:0 --embed-url "$FG_URL" &&
    grep -q "refusing to start: embedding server .* dimension 128, but the index.s are $DIM" err &&
    fg_stop'

t_ok 'another model: refused at start-up; swapped in later: refused, the old one serves' '
    t_status 1 timeout 30 sage-searchd --index-dir "$IX" --listen 127.0.0.1:0 \
        --embed-url "$FG0_URL" --embed-model other &&
    grep -q "embedded with model .fake., but --embed-model is .other." err &&
    grep -q "refusing to start" err &&
    FG_URL=$FG0_URL build new.sage --embed-model fake-v2 &&
    cp new.sage "$IX/.docs.tmp" && mv "$IX/.docs.tmp" "$IX/docs.sage" && rm -f "$IX/docs.sage.sha256" &&
    refused() { grep -q "refusing index .docs.* model .fake-v2., but the query embedder serves .fake." "$LOG"; } &&
    t_wait 20 refused &&
    sd_expect 200 r.json "/v1/search?q=sourdough+starter" &&
    jq -e ".generation == 1 and .hits[0].dense.rank == 1" r.json'

t_ok 'no 500 anywhere' '
    curl -sS --max-time 10 "$SD_URL/metrics" >m && grep -q "route=\"search\",status=\"200\"" m &&
    ! grep -q "status=\"500\"" m'

# searchd is a child of this shell (started at the top level): stopped here
sd_stop >"$T_ROOT/sd-stop.log" 2>&1
SD_STATUS=$?
t_ok 'SIGTERM: searchd exits 0' 'cat "$T_ROOT/sd-stop.log" && [ "$SD_STATUS" = 0 ]'

t_done
