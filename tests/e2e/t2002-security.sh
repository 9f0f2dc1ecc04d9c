#!/usr/bin/env bash
# sage-searchd's guards: API keys (list, variable, file), the admin key, the
# refusal to serve a non-loopback address without keys, TLS with a
# certificate made here, per-client rate limiting, CORS, request limits and
# the request timeout.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
S=$SAGE_TOP/datasets/sample
IX=$T_ROOT/ix
mkdir -p "$IX"
sage-indexer build --out "$IX/docs.sage" --library kestrel="$S/kestrel" --library notes="$S/notes" \
    >"$T_ROOT/build.log" 2>&1

Q="/v1/search?q=kestrel&k=1"
bearer() { echo "Authorization: Bearer $1"; }

t_ok 'SAGE_API_KEYS: no key 401 with WWW-Authenticate, wrong key 403, right keys 200' '
    SAGE_API_KEYS=key-one,key-two sd_start sd "$IX" &&
    sd_error 401 unauthorized "$Q" && grep -qi "^www-authenticate: Bearer" err.json.h &&
    sd_error 401 unauthorized "$Q" -H "Authorization: Basic a2V5LW9uZTo=" &&
    sd_error 403 forbidden "$Q" -H "$(bearer key-three)" &&
    sd_error 403 forbidden "$Q" -H "$(bearer key-one,key-two)" &&
    sd_error 403 forbidden "$Q" -H "$(bearer key-on)" &&
    sd_expect 200 r.json "$Q" -H "$(bearer key-one)" && jq -e "(.hits | length) == 1" r.json &&
    sd_expect 200 r.json "$Q" -H "$(bearer key-two)" &&
    sd_expect 200 r.json /v1/indexes -H "$(bearer key-two)" &&
    sd_error 401 unauthorized /v1/indexes && sd_error 401 unauthorized /v1/documents/0 &&
    sd_error 401 unauthorized /metrics && sd_error 401 unauthorized /v1/search --data "{\"q\":\"x\"}" &&
    grep -q " api-keys=\*\*\* " sd/searchd.log && ! grep -q key-one sd/searchd.log && sd_stop'

t_ok '/healthz and /readyz stay open when keys are set' '
    sd_start sd "$IX" --api-keys key-one &&
    sd_expect 200 h.json /healthz && sd_expect 200 r.json /readyz &&
    jq -e ".ready == true" r.json && sd_stop'

t_ok '--api-keys-file: one key a line, blanks and comments skipped; flag wins over variable' '
    printf "# deploy keys\n\n  file-key-1  \nfile-key-2\r\n" > keys &&
    SAGE_API_KEYS=env-key sd_start sd "$IX" --api-keys-file keys &&
    sd_expect 200 r.json "$Q" -H "$(bearer file-key-1)" &&
    sd_expect 200 r.json "$Q" -H "$(bearer file-key-2)" &&
    sd_error 403 forbidden "$Q" -H "$(bearer env-key)" &&
    sd_error 403 forbidden "$Q" -H "Authorization: Bearer # deploy keys" && sd_stop &&
    SAGE_API_KEYS=env-key sd_start sd2 "$IX" --api-keys flag-key &&
    sd_expect 200 r.json "$Q" -H "$(bearer flag-key)" &&
    sd_error 403 forbidden "$Q" -H "$(bearer env-key)" && sd_stop'

t_ok 'an unreadable keys file is an error at start' '
    t_status 2 sage-searchd -d "$IX" --listen 127.0.0.1:0 --api-keys-file no-such-file &&
    grep -q "cannot read API keys" err'

t_ok 'admin key: /v1/admin/reload 401 without, 403 with an API key, 200 with it' '
    sd_start sd "$IX" --api-keys key-one --admin-key adm-sekrit &&
    sd_error 401 unauthorized /v1/admin/reload -X POST && grep -qi "^www-authenticate: Bearer" err.json.h &&
    sd_error 403 forbidden /v1/admin/reload -X POST -H "$(bearer key-one)" &&
    sd_expect 200 r.json /v1/admin/reload -X POST -H "$(bearer adm-sekrit)" &&
    jq -e ". == {\"changes\": 0, \"ready\": true}" r.json &&
    sd_error 405 method_not_allowed /v1/admin/reload -H "$(bearer adm-sekrit)" &&
    sd_error 403 forbidden "$Q" -H "$(bearer adm-sekrit)" &&
    grep -q " admin-key=\*\*\* " sd/searchd.log && ! grep -q sekrit sd/searchd.log && sd_stop'

t_ok 'admin key from --admin-key-file; a reload picks up a new index' '
    printf "file-admin\n" > admin && mkdir ix && cp "$IX/docs.sage" ix/ &&
    sd_start sd ix --admin-key-file admin --poll-ms 3600000 &&
    cp "$IX/docs.sage" ix/more.sage &&
    sd_expect 200 r.json /v1/admin/reload -X POST -H "$(bearer file-admin)" &&
    # inotify may have loaded it first (then this rescan finds nothing new);
    # either way it is served once the reload has answered
    jq -e ".changes <= 1 and .ready == true" r.json &&
    sd_expect 200 r.json "$Q&index=more" && sd_stop'

t_ok 'a non-loopback --listen without keys is refused (exit 2); --allow-open passes' '
    t_status 2 sage-searchd -d "$IX" --listen 0.0.0.0:0 && grep -q "refusing to serve .0.0.0.0:0. without API keys" err &&
    t_status 2 sage-searchd -d "$IX" --listen "[::]:0" && grep -q "refusing to serve" err &&
    t_status 2 sage-searchd -d "$IX" --listen 8080 && grep -q "refusing to serve" err &&
    SAGE_LISTEN=0.0.0.0:0 t_status 2 sage-searchd -d "$IX" && grep -q "refusing to serve" err &&
    t_status 2 sage-searchd -d "$IX" --listen 127.0.0.1:0,0.0.0.0:0 && grep -q -- "--listen" err &&
    sd_start sd "$IX" --allow-open && grep -q " allow-open=true " sd/searchd.log &&
    sd_expect 200 r.json "$Q" && sd_stop'

t_ok 'TLS: HTTPS with a certificate made here; plain HTTP on the TLS port fails' '
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem 2> openssl.log &&
    sd_start sd "$IX" --tls-cert cert.pem --tls-key key.pem &&
    case $SD_URL in https://*) ;; *) false ;; esac &&
    sd_expect 200 r.json "$Q" --cacert cert.pem && jq -e "(.hits | length) == 1" r.json &&
    sd_expect 200 h.json /healthz --cacert cert.pem &&
    t_status 60 curl -s -o /dev/null "$SD_URL/healthz" &&
    ! curl -sf --max-time 10 -o /dev/null "http://127.0.0.1:$SD_PORT/healthz" &&
    sd_expect 200 h.json /healthz --cacert cert.pem && sd_stop'

t_ok 'TLS: a missing certificate or key file is an error at start' '
    t_status 1 sage-searchd -d "$IX" --listen 127.0.0.1:0 --tls-cert nope.pem --tls-key nope.key &&
    grep -q "cannot read the TLS certificate" err &&
    t_status 2 sage-searchd -d "$IX" --listen 127.0.0.1:0 --tls-key nope.key && grep -q -- "--tls-cert" err'

t_ok 'rate limit: --rate 5 --burst 5 answers 429 with Retry-After and a JSON error' '
    sd_start sd "$IX" --rate 5 --burst 5 &&
    args=() && for i in $(seq 20); do args+=(-o /dev/null "$SD_URL/healthz"); done &&
    curl -s --max-time 20 -w "%{http_code}\n" "${args[@]}" > codes &&
    [ "$(head -n 5 codes | sort -u)" = 200 ] && [ "$(grep -c "^429\$" codes)" -ge 10 ] &&
    ! grep -v -e "^200\$" -e "^429\$" codes &&
    t_wait 10 eval "[ \"\$(sd_call r.json /healthz)\" = 200 ]" &&
    sd_expect 200 r.json /healthz --interface 127.0.0.2 &&
    sd_expect 200 m.txt /metrics --interface 127.0.0.3 &&
    grep -q "^sage_requests_total{route=\"healthz\",status=\"429\"} [1-9]" m.txt && sd_stop'

t_ok 'rate limit: the 429 answer is a JSON error with Retry-After; search is limited too' '
    sd_start sd "$IX" --rate 1 --burst 1 &&
    curl -s --max-time 10 -o /dev/null "$SD_URL$Q" -D h2 -o b2 -w "%{http_code}\n" "$SD_URL$Q" > codes &&
    [ "$(tail -n 1 codes)" = 429 ] && grep -qi "^content-type: application/json" h2 &&
    after=$(sd_header h2 Retry-After) && [ "$after" -ge 1 ] && [ "$after" -le 2 ] &&
    jq -e ".error.code == \"rate_limited\" and (.error.message | length) > 0" b2 && sd_stop'

t_ok 'CORS: an allowed Origin is echoed on GET and preflight, others get nothing' '
    sd_start sd "$IX" --cors-origin https://docs.example.com --cors-origin https://b.example.com \
        --api-keys key-one &&
    o=https://docs.example.com &&
    sd_expect 200 r.json "$Q" -H "Origin: $o" -H "$(bearer key-one)" &&
    [ "$(sd_header r.json.h Access-Control-Allow-Origin)" = "$o" ] && grep -qi "^vary: Origin" r.json.h &&
    sd_expect 204 p.txt /v1/search -X OPTIONS -H "Origin: $o" -H "Access-Control-Request-Method: POST" \
        -H "Access-Control-Request-Headers: authorization, content-type" &&
    [ "$(sd_header p.txt.h Access-Control-Allow-Origin)" = "$o" ] &&
    sd_header p.txt.h Access-Control-Allow-Methods | grep -q POST &&
    sd_header p.txt.h Access-Control-Allow-Headers | grep -qi authorization &&
    sd_error 401 unauthorized "$Q" -H "Origin: $o" &&
    [ "$(sd_header err.json.h Access-Control-Allow-Origin)" = "$o" ] &&
    sd_expect 200 r.json "$Q" -H "Origin: https://b.example.com" -H "$(bearer key-one)" &&
    [ "$(sd_header r.json.h Access-Control-Allow-Origin)" = https://b.example.com ] &&
    sd_expect 200 r.json "$Q" -H "Origin: https://evil.example.com" -H "$(bearer key-one)" &&
    ! grep -qi "^access-control-allow-origin" r.json.h &&
    sd_expect 204 p.txt /v1/search -X OPTIONS -H "Origin: https://evil.example.com" &&
    ! grep -qi "^access-control-allow-origin" p.txt.h &&
    sd_expect 200 r.json "$Q" -H "$(bearer key-one)" && ! grep -qi "^access-control" r.json.h && sd_stop'

t_ok 'CORS: SAGE_CORS_ORIGINS="*" allows any origin' '
    SAGE_CORS_ORIGINS="*" sd_start sd "$IX" &&
    sd_expect 200 r.json "$Q" -H "Origin: https://anywhere.example" &&
    [ "$(sd_header r.json.h Access-Control-Allow-Origin)" = "*" ] && sd_stop'

t_ok 'limits: --max-query, --max-k and --max-body give 400 and 413' '
    sd_start sd "$IX" --max-query 64 --max-k 50 --max-body 128 &&
    q64=$(head -c 64 /dev/zero | tr "\\0" a) &&
    sd_expect 200 r.json "/v1/search?q=$q64" &&
    sd_error 400 query_too_long "/v1/search?q=${q64}b" &&
    sd_error 400 query_too_long /v1/search --data "{\"q\":\"${q64}b\"}" &&
    sd_error 400 query_too_long "/v1/search?q=$(head -c 10000 /dev/zero | tr "\\0" a)" &&
    sd_error 400 bad_request "/v1/search?q=$(head -c 60000 /dev/zero | tr "\\0" a)" &&
    sd_error 400 bad_request /healthz -H "X-Big: $(head -c 20000 /dev/zero | tr "\\0" a)" &&
    sd_expect 200 r.json "/v1/search?q=kestrel&k=50" &&
    sd_error 400 bad_request "/v1/search?q=kestrel&k=51" &&
    sd_error 400 bad_request /v1/search --data "{\"q\":\"kestrel\",\"k\":51}" &&
    sd_error 413 body_too_large /v1/search --data "{\"q\":\"kestrel\",\"index\":\"$(head -c 200 /dev/zero | tr "\\0" x)\"}" &&
    sd_expect 200 h.json /healthz && sd_stop'

# Sends the start of a request and nothing more; succeeds when the server
# closes the connection (cat sees end of file) before the deadline.
half_request() {
    exec 3<>"/dev/tcp/127.0.0.1/$SD_PORT" && printf "GET /healthz HTTP/1.1\r\nHost: x\r\n" >&3 &&
    timeout 8 cat <&3 >/dev/null
}

t_ok 'a client that stops half-way through its request is dropped (--request-timeout-ms)' '
    sd_start sd "$IX" --request-timeout-ms 500 && half_request &&
    sd_expect 200 h.json /healthz && sd_stop'

t_done
