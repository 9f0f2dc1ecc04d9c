#!/usr/bin/env bash
# sage-searchd's JSON API over the sample corpus and a hostile one: search
# (GET and POST, paging, filters, snippets), indexes, documents, health,
# readiness, metrics, every error as a JSON body with the right status,
# escaping of hostile text, the start-up configuration line, SIGTERM, --help.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
S=$SAGE_TOP/datasets/sample
IX=$T_ROOT/ix
H=$T_ROOT/hostile
mkdir -p "$IX" "$H"

# A Markdown file and a JSONL document full of text that must come back as
# text: script tags, quotes, backslashes, control bytes, invalid UTF-8, an
# emoji and a literal \u0000.
printf '# Hostile </script><script>alert(1)</script> heading\n\nzebrafish says 1 < 2 && 3 > 2, "double" and '\''single'\'' quotes, back\\slash, tab\there, bell\a, escape\033[31m, nul text \\u0000, bad bytes \377\376, emoji \360\237\230\200 zebrafish.\n' >"$H/evil.md"
cat >"$H/evil.jsonl" <<'EOF'
{"id":"evil-1","title":"T </script><script>alert(1)</script> \"q\" 's' \\ end","text":"zebrafish </script><script>alert(1)</script> \"double\" 'single' back\\slash ctl\u0001\u001f lit \\u0000 emoji \ud83d\ude00 & <b>bold</b> zebrafish"}
EOF
{
    sage-indexer build --out "$IX/docs.sage" --library kestrel="$S/kestrel" --library notes="$S/notes" &&
    sage-indexer build --out "$IX/hostile.sage" --library h="$H" &&
    rm "$IX/hostile.sage.sha256"
} >"$T_ROOT/build.log" 2>&1
sd_start "$T_ROOT/sd" "$IX" --access-log >"$T_ROOT/start.log" 2>&1
LOG=$T_ROOT/sd/searchd.log

# Every highlight range of the first hit cuts, out of the plain snippet, a
# word that snippet_html marks (ranges are byte offsets: LC_ALL=C).
marks_agree() {
    local s html a b words='' marked
    s=$(jq -r '.hits[0].snippet' "$1") && html=$(jq -r '.hits[0].snippet_html' "$1") || return 1
    while read -r a b; do
        words="$words${s:a:b-a} "
    done < <(jq -r '.hits[0].highlights[] | "\(.[0]) \(.[1])"' "$1")
    marked=$(printf '%s' "$html" | grep -o '<mark>[^<]*</mark>' | sed 's/<\/*mark>//g' | tr '\n' ' ')
    [ -n "$words" ] && [ "$words" = "$marked" ] || { echo "ranges give '$words', marks '$marked'"; return 1; }
}

# The value of sample $1 (a metric name with labels) in exposition file $2.
metric() {
    grep -F "$1 " "$2" | awk '{ print $NF }'
}

t_ok 'searchd starts on a free port, logs its configuration, loads both indexes' '
    cat "$T_ROOT/build.log" "$T_ROOT/start.log" && [ -n "$SD_PORT" ] &&
    grep -q "starting: listen=127.0.0.1:0 index-dir=$IX " "$LOG" &&
    grep -q "serving index .docs. generation 1" "$LOG" &&
    grep -q "serving index .hostile. generation 1" "$LOG" &&
    grep -q "listening on port $SD_PORT, ready" "$LOG"'

t_ok 'GET /v1/search: hits with every field, total, took_ms, index, generation' '
    sd_expect 200 r.json "/v1/search?q=certificate+rotation" &&
    grep -qi "^content-type: application/json" r.json.h &&
    jq -e ".index == \"docs\" and .generation == 1 and .query == \"certificate rotation\" and
        .k == 10 and .offset == 0 and .total >= 1 and (.total_exact | type == \"boolean\") and
        (.took_ms | type == \"number\") and .took_ms >= 0 and (.hits | length) == .total" r.json &&
    jq -e ".hits[0] | .library == \"kestrel\" and .path == \"guide/security.md\" and
        .title == \"Security: TLS and authentication\" and .score > 0 and
        (.doc | type == \"number\") and (.chunk | type == \"number\") and has(\"heading\") and
        (.page | type == \"number\") and (.snippet | test(\"certificate rotation\")) and
        (.snippet_html | test(\"<mark>certificate</mark> <mark>rotation</mark>\")) and
        (.highlights | length) >= 2" r.json'

t_ok 'searchd ranks exactly as sage-indexer query' '
    sd_expect 200 r.json "/v1/search?q=kestrel+segment&k=20&snippets=0" &&
    sage-indexer query --json -k 20 "$IX/docs.sage" "kestrel segment" > q.json &&
    jq -c "[.hits[] | [.path, .chunk, .score]]" r.json > a && jq -c "[.results[] | [.path, .chunk, .score]]" q.json > b &&
    cmp a b && jq -e "length > 3" a && [ "$(jq .total r.json)" = "$(jq .total q.json)" ]'

t_ok 'highlights are byte ranges of the words snippet_html marks' '
    sd_expect 200 r.json "/v1/search?q=certificate+rotation" && marks_agree r.json &&
    sd_expect 200 r2.json "/v1/search?q=restore+snapshot" && marks_agree r2.json'

t_ok 'k and offset page through one ranking' '
    sd_expect 200 all.json "/v1/search?q=kestrel&k=6&snippets=0" &&
    sd_expect 200 p1.json "/v1/search?q=kestrel&k=3&offset=0&snippets=0" &&
    sd_expect 200 p2.json "/v1/search?q=kestrel&k=3&offset=3&snippets=0" &&
    jq -e "(.hits | length) == 6" all.json && jq -e ".k == 3 and .offset == 3" p2.json &&
    [ "$(jq -c "[.hits[].chunk]" all.json)" = "$(jq -cs "[.[].hits[].chunk]" p1.json p2.json)" ] &&
    [ "$(jq .total p1.json)" = "$(jq .total p2.json)" ] &&
    sd_expect 200 end.json "/v1/search?q=kestrel&k=5&offset=1000" &&
    jq -e ".hits == [] and .total == $(jq .total p1.json)" end.json'

t_ok 'library and path_prefix filter before the top k' '
    sd_expect 200 lib.json "/v1/search?q=segment&library=notes" &&
    jq -e "(.hits | length) > 0 and all(.hits[]; .library == \"notes\")" lib.json &&
    sd_expect 200 pp.json "/v1/search?q=kestrel&path_prefix=ops/&k=50" &&
    jq -e "(.hits | length) > 0 and all(.hits[]; .path | startswith(\"ops/\"))" pp.json &&
    sd_expect 200 no.json "/v1/search?q=kestrel&library=nosuch" && jq -e ".total == 0 and .hits == []" no.json'

t_ok 'snippets=0 leaves snippets out, snippets=1 puts them in' '
    sd_expect 200 s0.json "/v1/search?q=kestrel&snippets=0" &&
    jq -e "(.hits | length) > 0 and all(.hits[]; has(\"snippet\") or has(\"snippet_html\") or has(\"highlights\") | not)" s0.json &&
    sd_expect 200 s1.json "/v1/search?q=kestrel&snippets=1" &&
    jq -e "(.hits | length) > 0 and all(.hits[]; (.snippet | length) > 0 and has(\"snippet_html\") and has(\"highlights\"))" s1.json &&
    jq -e "any(.hits[]; (.snippet_html | test(\"<mark>kestrel</mark>\"; \"i\")) and (.highlights | length) > 0)" s1.json &&
    # without snippets, heading and page come from CHUNK_META, not the chunk
    # records: the same values, hit for hit
    sd_expect 200 m0.json "/v1/search?q=kestrel+backup+the&k=50&snippets=0" &&
    sd_expect 200 m1.json "/v1/search?q=kestrel+backup+the&k=50&snippets=1" &&
    jq -c "[.hits[] | [.chunk, .heading, .page]]" m0.json >m0 &&
    jq -c "[.hits[] | [.chunk, .heading, .page]]" m1.json >m1 &&
    cmp m0 m1 && jq -e "any(.hits[]; .heading != null) and any(.hits[]; .heading == null)" m1.json'

t_ok 'POST /v1/search with a JSON body answers as GET does' '
    sd_expect 200 get.json "/v1/search?q=kestrel+segment&k=3&offset=1&library=kestrel&path_prefix=ops/" &&
    sd_expect 200 post.json /v1/search -H "Content-Type: application/json" \
        --data "{\"q\":\"kestrel segment\",\"k\":3,\"offset\":1,\"library\":\"kestrel\",\"path_prefix\":\"ops/\",\"snippets\":true}" &&
    [ "$(jq -c "del(.took_ms)" get.json)" = "$(jq -c "del(.took_ms)" post.json)" ] &&
    jq -e "(.hits | length) > 0" post.json &&
    sd_expect 200 ns.json /v1/search --data "{\"q\":\"kestrel\",\"snippets\":false}" &&
    jq -e "(.hits | length) > 0 and all(.hits[]; has(\"snippet\") | not)" ns.json'

t_ok 'GET /v1/indexes: name, file, sha256, generation, counts, build record' '
    sd_expect 200 ix.json /v1/indexes &&
    sage-indexer info --json "$IX/docs.sage" > info.json &&
    jq -e "[.indexes[].name] == [\"docs\", \"hostile\"]" ix.json &&
    jq -e --arg f "$(realpath "$IX/docs.sage")" --arg sha "$(cut -d " " -f 1 "$IX/docs.sage.sha256")" \
        --argjson size "$(stat -c %s "$IX/docs.sage")" --slurpfile info info.json \
        ".indexes[0] | .file == \$f and .sha256 == \$sha and .size == \$size and .generation == 1 and
         .counts == \$info[0].counts and .counts.documents > 0 and
         (.loaded_at | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\$\")) and
         .build.tool == \"sage-indexer\" and ([.build.libraries[].name] == [\"kestrel\", \"notes\"]) and
         .format.major == 1" ix.json &&
    jq -e ".indexes[1] | .name == \"hostile\" and .sha256 == null and .counts.documents == 2" ix.json'

t_ok 'GET /v1/documents/{id}: the record and its chunks' '
    sd_expect 200 r.json "/v1/search?q=certificate+rotation&k=1" &&
    doc=$(jq .hits[0].doc r.json) && chunk=$(jq .hits[0].chunk r.json) &&
    sd_expect 200 d.json "/v1/documents/$doc" &&
    jq -e --argjson id "$doc" --argjson c "$chunk" ".id == \$id and .index == \"docs\" and
        .generation == 1 and .path == \"guide/security.md\" and .library == \"kestrel\" and
        (.chunks | length) == .n_chunks and ([.chunks[].chunk] == [range(.first_chunk; .first_chunk + .n_chunks)]) and
        any(.chunks[]; .chunk == \$c) and all(.chunks[]; (.text | length) > 0 and has(\"heading\"))" d.json &&
    sd_expect 200 h.json "/v1/documents/0?index=hostile" && jq -e ".index == \"hostile\"" h.json'

t_ok 'documents: unknown id 404, non-numeric 400, unknown index 404' '
    sd_error 404 unknown_document /v1/documents/999999 &&
    sd_error 400 bad_request /v1/documents/abc &&
    sd_error 400 bad_request /v1/documents/-1 &&
    sd_error 400 bad_request /v1/documents/1x &&
    sd_error 400 bad_request /v1/documents/ &&
    sd_error 404 unknown_index "/v1/documents/1?index=nosuch"'

t_ok '/healthz and /readyz answer 200 with an index loaded' '
    sd_expect 200 h.json /healthz && jq -e ". == {\"status\": \"ok\"}" h.json &&
    sd_expect 200 r.json /readyz && jq -e ". == {\"ready\": true}" r.json'

t_ok 'an empty index directory: alive, not ready (503), search 503' '
    mkdir empty && sd_start sd empty &&
    sd_expect 200 h.json /healthz &&
    sd_expect 503 r.json /readyz && jq -e ". == {\"ready\": false}" r.json &&
    sd_error 503 not_ready "/v1/search?q=kestrel" &&
    grep -q "not ready (no index loaded)" sd/searchd.log && sd_stop'

t_ok '/metrics: requests by route and status, latency histogram, generations, reloads' '
    sd_error 400 bad_request /v1/search && sd_error 404 not_found /no/such/route &&
    sd_expect 200 m1.txt /metrics && sd_expect 200 r.json "/v1/search?q=kestrel" &&
    sd_expect 200 m2.txt /metrics &&
    grep -qi "^content-type: text/plain; version=0.0.4" m2.txt.h &&
    grep -qx "# TYPE sage_requests_total counter" m2.txt &&
    grep -qx "# TYPE sage_request_duration_seconds histogram" m2.txt &&
    a=$(metric "sage_requests_total{route=\"search\",status=\"200\"}" m1.txt) &&
    b=$(metric "sage_requests_total{route=\"search\",status=\"200\"}" m2.txt) &&
    [ -n "$a" ] && [ "$b" = $((a + 1)) ] &&
    [ "$(metric "sage_requests_total{route=\"search\",status=\"400\"}" m2.txt)" -ge 1 ] &&
    [ "$(metric "sage_requests_total{route=\"other\",status=\"404\"}" m2.txt)" -ge 1 ] &&
    inf=$(metric "sage_request_duration_seconds_bucket{route=\"search\",le=\"+Inf\"}" m2.txt) &&
    [ -n "$inf" ] && [ "$inf" = "$(metric "sage_request_duration_seconds_count{route=\"search\"}" m2.txt)" ] &&
    grep "^sage_request_duration_seconds_bucket{route=\"search\"" m2.txt | awk "{ if (\$NF < last) exit 1; last = \$NF }" &&
    grep -q "^sage_request_duration_seconds_sum{route=\"search\"} [0-9.]*\$" m2.txt &&
    [ "$(metric "sage_index_generation{index=\"docs\"}" m2.txt)" = 1 ] &&
    [ "$(metric "sage_index_generation{index=\"hostile\"}" m2.txt)" = 1 ] &&
    [ "$(metric "sage_reloads_total{result=\"ok\"}" m2.txt)" = 2 ] &&
    [ "$(metric "sage_reloads_total{result=\"failed\"}" m2.txt)" = 0 ] &&
    ! grep -v "^#" m2.txt | grep -Evq "^[a-z_]+(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? [0-9][0-9.e+-]*\$"'

t_ok 'bad parameters: 400 with a JSON error' '
    sd_error 400 bad_request /v1/search &&
    sd_error 400 bad_request "/v1/search?q=" &&
    sd_error 400 bad_request "/v1/search?q=kestrel&k=0" &&
    sd_error 400 bad_request "/v1/search?q=kestrel&k=1001" &&
    sd_error 400 bad_request "/v1/search?q=kestrel&k=ten" &&
    sd_error 400 bad_request "/v1/search?q=kestrel&k=99999999999999999999" &&
    sd_error 400 bad_request "/v1/search?q=kestrel&offset=-1" &&
    sd_error 400 bad_request "/v1/search?q=kestrel&offset=1.5" &&
    sd_error 400 bad_query "/v1/search?q=library:" &&
    sd_error 400 query_too_long "/v1/search?q=$(head -c 2000 /dev/zero | tr "\\0" a)"'

t_ok 'POST errors: bad JSON 400 bad_json, wrong types 400, body too large 413' '
    sd_error 400 bad_json /v1/search --data "{bad" &&
    sd_error 400 bad_json /v1/search --data "[\"q\"]" &&
    sd_error 400 bad_json /v1/search --data "" -X POST &&
    sd_error 400 bad_json /v1/search --data "{\"q\":\"a\",\"q\":\"b\"}" &&
    sd_error 400 bad_request /v1/search --data "{\"q\":5}" &&
    sd_error 400 bad_request /v1/search --data "{\"q\":\"kestrel\",\"k\":\"3\"}" &&
    sd_error 400 bad_request /v1/search --data "{\"q\":\"kestrel\",\"snippets\":1}" &&
    sd_error 400 bad_request /v1/search --data "{\"q\":\"kestrel\",\"k\":0}" &&
    head -c 70000 /dev/zero | tr "\\0" " " > big && sd_error 413 body_too_large /v1/search --data-binary @big &&
    sd_error 413 body_too_large /v1/search -H "Transfer-Encoding: chunked" --data-binary @big &&
    sd_expect 200 ok.json /v1/search -H "Transfer-Encoding: chunked" --data "{\"q\":\"kestrel\"}"'

t_ok 'unknown index: 404 unknown_index on GET and POST' '
    sd_error 404 unknown_index "/v1/search?q=kestrel&index=nosuch" &&
    sd_error 404 unknown_index /v1/search --data "{\"q\":\"kestrel\",\"index\":\"nosuch\"}" &&
    sd_expect 200 r.json "/v1/search?q=zebrafish&index=hostile" && jq -e ".index == \"hostile\"" r.json'

t_ok 'wrong method 405 with Allow, unknown path 404 (/ is the search page)' '
    sd_error 405 method_not_allowed /v1/search -X DELETE && grep -qi "^allow: GET, POST" err.json.h &&
    sd_error 405 method_not_allowed /v1/indexes -X PUT && grep -qi "^allow: GET" err.json.h &&
    sd_error 405 method_not_allowed /v1/documents/1 -X POST --data x &&
    sd_error 404 not_found /nope && sd_error 404 not_found /v1/searchx &&
    sd_error 404 not_found /ui/nope.js &&
    [ "$(curl -s -o page.html -w "%{http_code} %{content_type}" "$SD_URL/")" = "200 text/html; charset=utf-8" ]'

t_ok 'admin reload refused without an admin key' '
    sd_error 401 unauthorized /v1/admin/reload -X POST && grep -qi "^www-authenticate: Bearer" err.json.h &&
    sd_error 403 forbidden /v1/admin/reload -X POST -H "Authorization: Bearer guess"'

t_ok 'hostile Markdown: valid JSON, text kept, HTML escaped in snippet_html' '
    sd_expect 200 r.json "/v1/search?q=zebrafish&index=hostile&k=5" &&
    jq -e "(.hits | length) == 2 and all(.hits[]; (.snippet | length) > 0 and (.snippet_html | length) > 0)" r.json &&
    ! LC_ALL=C grep -q "[^ -~]" r.json &&
    jq -e ".hits[] | select(.path == \"evil.md\") | (.snippet | contains(\"1 < 2 && 3 > 2\") and
        contains(\"\\\"double\\\"\") and contains(\"back\\\\slash\") and contains(\"\\\\u0000\") and
        contains(\"😀\") and (explode | all(. >= 32))) and
        (.snippet_html | contains(\"1 &lt; 2 &amp;&amp; 3 &gt; 2\") and contains(\"&quot;double&quot;\") and
        contains(\"&#39;single&#39;\") and (gsub(\"</?mark>\"; \"\") | test(\"[<>\\\"]\") | not))" r.json &&
    sd_expect 200 d.json "/v1/documents/$(jq ".hits[] | select(.path == \"evil.md\") | .doc" r.json)?index=hostile" &&
    jq -e ".chunks[0].text | contains(\"\\\\u0000\") and contains(\"😀\")" d.json'

t_ok 'hostile JSONL: script tags come back as text, escaped in snippet_html' '
    sd_expect 200 r.json "/v1/search?q=zebrafish+alert&index=hostile" &&
    ! LC_ALL=C grep -q "[^ -~]" r.json &&
    jq -e ".hits[] | select(.path == \"evil.jsonl#evil-1\") |
        .title == \"T </script><script>alert(1)</script> \\\"q\\\" '\''s'\'' \\\\ end\" and
        (.snippet | contains(\"</script><script>alert(1)</script> \\\"double\\\" '\''single'\'' back\\\\slash\")) and
        (.snippet_html | contains(\"&lt;/script&gt;&lt;script&gt;<mark>alert</mark>(1)&lt;/script&gt;\") and
            contains(\"&amp; &lt;b&gt;bold&lt;/b&gt;\") and (gsub(\"</?mark>\"; \"\") | test(\"[<>]\") | not))" r.json'

t_ok 'hostile strings in the query and names come back escaped, in answers and errors' '
    q="</script>\"\\ 😀 kestrel" &&
    sd_expect 200 r.json /v1/search -G --data-urlencode "q=$q" && ! LC_ALL=C grep -q "[^ -~]" r.json &&
    jq -e --arg q "$q" ".query == \$q" r.json &&
    sd_error 404 unknown_index /v1/search -G --data-urlencode "q=kestrel" --data-urlencode "index=<x>\"\\" &&
    jq -e ".error.message | contains(\"<x>\\\"\\\\\")" err.json &&
    sd_error 404 not_found "/%3Cscript%3E%22%5C%FF" && ! LC_ALL=C grep -q "[^ -~]" err.json &&
    sd_error 400 bad_query /v1/search -G --data-urlencode "q=$(printf "bad \\377 bytes")" &&
    jq -e ".error.message | test(\"UTF-8\")" err.json'

t_ok 'the access log has one JSON line per request, hostile paths included' '
    sd_expect 200 r.json "/v1/search?q=accesslogmarker" &&
    sd_error 404 not_found "/accesslog%FFbad%22%0A" &&
    t_wait 5 grep -q "accesslog.bad" "$LOG" &&
    grep "access .*accesslogmarker" "$LOG" | sed "s/^sage-searchd: access //" |
        jq -e "select(.path == \"/v1/search\") | .method == \"GET\" and .status == 200 and
            .remote == \"127.0.0.1\" and .query == \"q=accesslogmarker\" and (.ms | type == \"number\")" &&
    grep "access .*accesslog.bad" "$LOG" | sed "s/^sage-searchd: access //" |
        jq -e ".path == \"/accesslog?bad\\\"\\n\" and .status == 404"'

t_ok 'effective configuration at start masks keys as ***; JSON log lines' '
    SAGE_ADMIN_KEY=sekrit-admin sd_start sd "$IX" --api-keys sekrit-one,sekrit-two \
        --access-log --log-format json &&
    sd_expect 200 r.json "/v1/search?q=kestrel" -H "Authorization: Bearer sekrit-one" &&
    sd_stop && jq -e . sd/searchd.log > /dev/null &&
    jq -r "select(.msg | startswith(\"starting: \")) | .msg" sd/searchd.log > start &&
    grep -q " api-keys=\*\*\* " start && grep -q " admin-key=\*\*\* " start &&
    grep -q " access-log=true " start && grep -q "listen=127.0.0.1:0 " start &&
    ! grep -q sekrit sd/searchd.log'

# A request that reached a handler (and the access log) gets its whole
# answer; one that comes while the others finish gets 503; a connection
# still in the listen queue may be reset (52, 56) or refused (7).
t_ok 'SIGTERM: stops accepting, finishes requests in flight, exits 0' '
    sd_start sd "$IX" --threads 4 --access-log &&
    for i in 1 2 3 4; do
        (n=0; while [ $n -lt 3000 ] && curl -s --max-time 10 -o /dev/null -w "%{http_code} %{exitcode}\n" \
            "$SD_URL/v1/search?q=kestrel+segment+replication&k=1000" >> codes.$i; do n=$((n + 1)); done) &
    done &&
    t_wait 10 eval "[ -s codes.1 ] && [ -s codes.2 ] && [ -s codes.3 ] && [ -s codes.4 ]" &&
    sd_stop && wait &&
    grep -q "SIGTERM: stopping after the requests in flight" sd/searchd.log &&
    cat codes.* > all && ok=$(grep -c "^200 0\$" all) && [ "$ok" -ge 4 ] &&
    ! grep -v -e "^200 0\$" -e "^503 0\$" -e "^000 7\$" -e "^000 52\$" -e "^000 56\$" all &&
    [ "$(grep -c "access .*\"status\":200" sd/searchd.log)" = "$ok" ] &&
    t_status 7 curl -s -o /dev/null "$SD_URL/healthz"'

t_ok '--help lists every option and its variable; the man page has them all' '
    t_status 0 sage-searchd --help > help && grep -q "^usage: sage-searchd" help &&
    grep -o -- "--[a-z-]*" help | sort -u > flags && [ "$(wc -l < flags)" -ge 20 ] &&
    grep -o "\[SAGE_[A-Z_]*\]" help | tr -d "[]" > vars && [ "$(wc -l < vars)" -ge 20 ] &&
    tr -d "\\\\" < "$SAGE_TOP/docs/sage-searchd.8" > man &&
    while read -r f; do grep -q -- "^\.B.* $f\b" man || { echo "$f missing from the man page"; exit 1; }; done < flags &&
    while read -r v; do grep -qF "[$v]" man || { echo "$v missing from the man page"; exit 1; }; done < vars &&
    t_status 0 sage-searchd --version > v && grep -q "^sage-searchd " v'

t_ok 'usage errors exit 2 and name the flag' '
    t_status 2 sage-searchd && grep -q -- "--index-dir is required" err &&
    t_status 2 sage-searchd -d . --no-such-flag && grep -q -- "no-such-flag" err &&
    t_status 2 sage-searchd -d . --max-k 0 && grep -q -- "--max-k" err &&
    t_status 2 sage-searchd -d . --rate -1 && grep -q -- "--rate" err &&
    SAGE_MAX_QUERY=big t_status 2 sage-searchd -d . && grep -q "SAGE_MAX_QUERY" err &&
    t_status 2 sage-searchd -d . --log-format xml && grep -q -- "--log-format" err &&
    t_status 2 sage-searchd -d . --tls-cert c.pem && grep -q -- "--tls-key" err &&
    t_status 2 sage-searchd -d . extra && grep -q "unexpected argument" err'

t_done
