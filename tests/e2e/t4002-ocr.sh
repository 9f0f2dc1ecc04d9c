#!/usr/bin/env bash
# Remote OCR (indexer/ocr.c, driven by tests/lib/ocr_client) against the fake
# GPU server's /v1/chat/completions: page images go as base64 PNGs and come
# back as text (olmOCR's JSON and front-matter formats unwrapped), through
# injected 503s and drops, in parallel; bad answers, non-PNG input, slow and
# dead servers fail clearly; the API key travels as a Bearer header.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/fakegpu.sh"

# mkpng FILE SEED [FILE SEED...]: small valid grey PNGs whose pixels depend on SEED.
mkpng() {
    python3 - "$@" <<'EOF'
import struct, sys, zlib
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
for path, seed in zip(sys.argv[1::2], map(int, sys.argv[2::2])):
    w, h = 16, 8
    raw = b"".join(b"\0" + bytes((seed * 31 + x * 7 + y * 13) & 255 for x in range(w))
                   for y in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    open(path, "wb").write(png)
EOF
}

# ocr_map OUT FILE=TEXT...: the fake's --ocr-map, keyed by each file's SHA-256.
ocr_map() {
    local out=$1 a
    shift
    for a in "$@"; do
        printf '%s\t%s\n' "$(sha256sum "${a%%=*}" | cut -d' ' -f1)" "${a#*=}"
    done | jq -R 'split("\t") | {(.[0]): .[1]}' | jq -s add >"$out"
}

pages() {
    mkpng p1.png 1 p2.png 2 p3.png 3 &&
    ocr_map map.json p1.png="zebra quartz manual" p2.png="okapi rotation guide"
}

t_ok 'pages come back as their text; an unknown page gets the default text; prompt and model sent' '
    pages && fg_start srv --ocr-map map.json --ocr-text "default page text" &&
    fg_run ocr_client --url "$FG_URL" --model olmocr-7b --prompt "read it" --out text p1.png p2.png p3.png &&
    printf "zebra quartz manual\nokapi rotation guide\ndefault page text\n" | cmp - text &&
    fg_check ".ok and .pages == 3 and .requests == 3" run.json &&
    fg_stats >stats.json &&
    fg_check ".ocr_last.model == \"olmocr-7b\" and .ocr_last.prompt == \"read it\" and .ocr_last.max_tokens == 4096" stats.json &&
    fg_stop'

t_ok "olmOCR answer formats (JSON natural_text, YAML front matter) are unwrapped" '
    pages && fg_start srv --ocr-map map.json --ocr-format json &&
    fg_run ocr_client --url "$FG_URL/v1" --out a p1.png && echo "zebra quartz manual" | cmp - a &&
    fg_faults "{\"ocr_format\": \"yaml\"}" &&
    fg_run ocr_client --url "$FG_URL/v1/chat/completions" --out b p2.png && echo "okapi rotation guide" | cmp - b &&
    fg_stop'

t_ok '40 pages on 4 threads through 30% injected 503s and drops: all right, each served once' '
    mkpng $(for i in $(seq 1 40); do printf "q%s.png %s " $i $((i + 10)); done) &&
    ocr_map map.json $(for i in $(seq 1 40); do printf "q%s.png=page-%s-text " $i $i; done) &&
    fg_start srv --ocr-map map.json --error-rate 0.3 --error-statuses 503 --retry-after 0 \
        --drop-rate 0.05 --jitter-ms 50 --seed 3 &&
    fg_run ocr_client --url "$FG_URL" --threads 4 --backoff-ms 20 --attempts 30 --out text \
        $(for i in $(seq 1 40); do printf "q%s.png " $i; done) &&
    for i in $(seq 1 40); do echo "page-$i-text"; done | cmp - text &&
    fg_check ".ok and .pages == 40 and .retries > 0" run.json &&
    fg_stats >stats.json &&
    fg_check "(.ocr_served | length) == 40 and ([.ocr_served[]] | all(. == 1)) and .status[\"503\"] > 0" stats.json &&
    fg_stop'

t_ok 'not a PNG: refused before any request' '
    printf "GIF89a not a png" >x.gif && fg_start srv &&
    fg_fails "page image is not a PNG" ocr_client --url "$FG_URL" x.gif &&
    fg_stats >stats.json && fg_check ".requests == 0" stats.json && fg_stop'

t_ok 'malformed JSON is a clear error, not retried' '
    mkpng p.png 1 && fg_start srv --malformed &&
    fg_fails "OCR server '\''$FG_URL/v1/chat/completions'\'' sent a bad response: malformed JSON" ocr_client \
        --url "$FG_URL" p.png &&
    fg_stats >stats.json && fg_check ".requests == 1" stats.json && fg_stop'

t_ok 'per-page timeout, then the attempts run out; a dead server fails in bounded time' '
    mkpng p.png 1 && fg_start srv --latency-ms 3000 &&
    fg_fails "after 2 attempts" ocr_client --url "$FG_URL" --timeout-ms 300 --attempts 2 --backoff-ms 10 p.png &&
    grep -qi "timed out" err && fg_stop &&
    port=$(python3 -c "import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1]); s.close()") &&
    fg_fails "after 3 attempts" ocr_client --url "http://127.0.0.1:$port" --attempts 3 --backoff-ms 50 p.png &&
    fg_check ".elapsed_ms < 10000" run.json'

t_ok 'the API key is sent as a Bearer header (from SAGE_OCR_API_KEY_FILE); a wrong one fails with 401' '
    mkpng p.png 1 && fg_start srv --api-key ocr-k3y --ocr-text "secret page" &&
    printf "ocr-k3y\n" >key &&
    SAGE_OCR_URL=$FG_URL SAGE_OCR_MODEL=olm SAGE_OCR_API_KEY_FILE=$PWD/key fg_run ocr_client --env --out t p.png &&
    echo "secret page" | cmp - t &&
    fg_stats >stats.json && fg_check ".auth == \"Bearer ocr-k3y\" and .ocr_last.model == \"olm\"" stats.json &&
    fg_fails "HTTP 401: invalid api key" ocr_client --url "$FG_URL" --key nope p.png &&
    ! SAGE_OCR_URL=$FG_URL SAGE_OCR_TIMEOUT_MS=soon fg_run ocr_client --env p.png && grep -q SAGE_OCR_TIMEOUT_MS err &&
    fg_stop'

t_done
