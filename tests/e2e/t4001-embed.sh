#!/usr/bin/env bash
# The remote embedding client (indexer/embed.c, driven by tests/lib/embed_client)
# against the fake GPU server (tests/lib/fakegpu.py) over real HTTP on
# 127.0.0.1: vectors arrive intact and in id order, every input is embedded
# exactly once through injected 503/429/500s, drops and delays, Retry-After is
# honoured, bad answers and dead servers fail clearly and in bounded time,
# batch limits hold, and the API key travels as a Bearer header.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/fakegpu.sh"

N=2000
BASE="$T_ROOT/base.vec"

# Every one of $1 distinct inputs was answered with a 200 exactly once.
served_once() {
    fg_stats >stats.json &&
        fg_check "(.served | length) == $1 and ([.served[]] | all(. == 1))" stats.json
}

# The first vector in FILE equals fakegpu.embed(TEXT, DIM) to float precision.
near() {
    python3 - "$@" <<'EOF'
import sys
sys.path.insert(0, sys.argv[4])
import fakegpu
got = [float(x) for x in open(sys.argv[1]).readline().split()[1:]]
want = fakegpu.embed(sys.argv[2], int(sys.argv[3]))
assert len(got) == len(want), (len(got), len(want))
bad = [i for i, (a, b) in enumerate(zip(got, want)) if abs(a - b) > 1e-6]
assert not bad, ("differs at", bad[:5])
EOF
}

t_ok 'fault-free run: 2000 inputs from 3 producers, batches of at most 32, each served once' '
    fg_start srv --dim 64 --max-inputs 32 &&
    fg_run embed_client --url "$FG_URL" --dim 64 --gen $N --producers 3 --out "$BASE" &&
    fg_check ".ok and .inputs == $N and .max_batch <= 32 and .retries == 0 and .dim == 64" run.json &&
    test "$(wc -l <"$BASE")" = $N &&
    served_once $N && fg_check ".max_batch == 32" stats.json && fg_stop'

t_ok '30% injected 503/429/500, drops and delays: all complete, vectors unchanged, each input served once' '
    fg_start srv --dim 64 --max-inputs 32 --error-rate 0.3 --error-statuses 503,429,500 \
        --retry-after 0 --drop-rate 0.05 --latency-ms 5 --jitter-ms 100 --seed 7 &&
    fg_run embed_client --url "$FG_URL" --dim 64 --gen $N --producers 2 --backoff-ms 20 --backoff-max-ms 500 \
        --attempts 30 --out got.vec &&
    cmp "$BASE" got.vec &&
    fg_check ".ok and .inputs == $N and .retries > 0" run.json &&
    served_once $N &&
    fg_check "(.status[\"503\"] + .status[\"429\"] + .status[\"500\"]) >= 10 and .dropped > 0" stats.json &&
    fg_stop'

t_ok 'vector callback instead of stored vectors gives the same vectors' '
    fg_start srv --dim 64 &&
    fg_run embed_client --url "$FG_URL" --dim 64 --gen $N --callback --concurrency 2 --out got.vec &&
    cmp "$BASE" got.vec && served_once $N && fg_stop'

t_ok 'query: prefix sent, vector parsed exactly; dimension learned when not configured' '
    fg_start srv --dim 48 &&
    fg_run embed_client --url "$FG_URL/v1" --query "rotate tls certificates" --query-prefix "search_query: " --out q.vec &&
    fg_check ".ok and .dim == 48 and .requests == 1" run.json &&
    near q.vec "search_query: rotate tls certificates" 48 "$SAGE_TOP/tests/lib" &&
    fg_stats >stats.json && fg_check ".last_input == \"search_query: rotate tls certificates\"" stats.json &&
    fg_stop'

t_ok 'document prefix is prepended; --normalize restores unit length of scaled vectors' '
    fg_start srv --dim 64 --scale 3 &&
    fg_run embed_client --url "$FG_URL/v1/embeddings/" --dim 64 --gen $N --doc-prefix "search_document: " \
        --normalize --out got.vec &&
    fg_stats >stats.json && fg_check ".last_input | startswith(\"search_document: text \")" stats.json &&
    awk "{ s = 0; for (i = 2; i <= NF; i++) s += \$i * \$i; if (s < 0.9999 || s > 1.0001) exit 1 }" got.vec &&
    fg_stop'

t_ok 'Retry-After is honoured: a 429 with Retry-After: 2 delays the retry by at least 2 s' '
    fg_start srv --dim 64 --fail-next 1 --error-statuses 429 --retry-after 2 &&
    fg_run embed_client --url "$FG_URL" --dim 64 --gen 5 --backoff-ms 1 --backoff-max-ms 10000 &&
    fg_check ".ok and .requests == 2 and .retries == 1 and .elapsed_ms >= 2000" run.json &&
    fg_stats >stats.json && fg_check ".status[\"429\"] == 1 and .status[\"200\"] == 1" stats.json &&
    fg_stop'

t_ok 'wrong dimension is a clear error, not retried' '
    fg_start srv --dim 64 --wrong-dim 65 &&
    fg_fails "dimension: vector 0 has 65 numbers, expected 64" embed_client --url "$FG_URL" --dim 64 --gen 10 &&
    grep -qF "$FG_URL/v1/embeddings" err &&
    fg_stats >stats.json && fg_check ".requests == 1" stats.json && fg_stop'

t_ok 'malformed JSON is a clear error, not retried' '
    fg_start srv --dim 64 --malformed &&
    fg_fails "malformed JSON in the response" embed_client --url "$FG_URL" --dim 64 --gen 10 &&
    fg_stats >stats.json && fg_check ".requests == 1" stats.json && fg_stop'

t_ok 'dead server (closed port): error after the retry budget, within a bounded time' '
    port=$(python3 -c "import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1]); s.close()") &&
    fg_fails "after 5 attempts" embed_client --url "http://127.0.0.1:$port" --dim 64 --gen 100 \
        --attempts 5 --backoff-ms 50 --backoff-max-ms 400 &&
    grep -qF "127.0.0.1:$port/v1/embeddings" err && grep -qi "connect" err &&
    fg_check ".elapsed_ms < 15000 and .requests >= 5" run.json'

t_ok 'the retry time budget ends a run against a dead server before the attempts do' '
    port=$(python3 -c "import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1]); s.close()") &&
    fg_fails "embedding server" embed_client --url "http://127.0.0.1:$port" --dim 64 --gen 10 \
        --attempts 1000 --budget-ms 1500 --backoff-ms 100 --backoff-max-ms 300 &&
    fg_check ".elapsed_ms < 10000 and .requests < 100" run.json'

t_ok 'per-request timeout: a server slower than the timeout fails after the attempts' '
    fg_start srv --dim 64 --latency-ms 3000 &&
    fg_fails "after 2 attempts" embed_client --url "$FG_URL" --dim 64 --gen 3 --timeout-ms 300 \
        --attempts 2 --backoff-ms 10 &&
    grep -qi "timeout\|timed out" err && fg_check ".elapsed_ms < 3000" run.json && fg_stop'

t_ok 'batch limits hold: the server refuses more than 8 inputs or 600 tokens, so passing proves it' '
    fg_start srv --dim 64 --max-inputs 8 --max-tokens 600 &&
    fg_run embed_client --url "$FG_URL" --dim 64 --gen 500 --len 300 --batch 8 --max-tokens 600 --concurrency 3 &&
    fg_check ".ok and .inputs == 500 and .max_batch <= 8" run.json &&
    fg_stats >stats.json && fg_check ".max_batch <= 8 and .max_batch_tokens <= 600 and .status[\"413\"] == null" stats.json &&
    served_once 500 &&
    fg_fails "lower SAGE_EMBED_BATCH, now 9" embed_client --url "$FG_URL" --dim 64 --gen 50 --len 30 --batch 9 --max-tokens 100000 &&
    fg_stop'

t_ok 'the API key is sent as a Bearer header; a wrong key fails with 401, not retried' '
    fg_start srv --dim 64 --api-key s3cret-key &&
    fg_run embed_client --url "$FG_URL" --dim 64 --gen 10 --key s3cret-key &&
    fg_stats >stats.json && fg_check ".auth == \"Bearer s3cret-key\"" stats.json &&
    fg_reset && fg_fails "HTTP 401: invalid api key" embed_client --url "$FG_URL" --dim 64 --gen 10 --key wrong &&
    fg_stats >stats.json && fg_check ".requests == 1" stats.json &&
    printf "s3cret-key\n" >key && chmod 600 key &&
    SAGE_EMBED_URL=$FG_URL SAGE_EMBED_API_KEY_FILE=$PWD/key SAGE_EMBED_DIM=64 \
        fg_run embed_client --env --gen 10 && fg_check ".ok and .dim == 64" run.json && fg_stop'

t_ok 'configuration from SAGE_EMBED_* variables, and a bad value names its variable' '
    fg_start srv --dim 32 --max-inputs 4 &&
    SAGE_EMBED_URL=$FG_URL SAGE_EMBED_MODEL=m1 SAGE_EMBED_DIM=32 SAGE_EMBED_BATCH=4 \
        SAGE_EMBED_CONCURRENCY=2 SAGE_EMBED_DOC_PREFIX="doc: " SAGE_EMBED_NORMALIZE=yes \
        fg_run embed_client --env --gen 40 &&
    fg_check ".ok and .max_batch == 4 and .inputs == 40" run.json &&
    fg_stats >stats.json && fg_check ".last_input | startswith(\"doc: \")" stats.json &&
    ! SAGE_EMBED_URL=$FG_URL SAGE_EMBED_DIM=abc fg_run embed_client --env --gen 1 && grep -q SAGE_EMBED_DIM err &&
    ! SAGE_EMBED_URL=$FG_URL SAGE_EMBED_NORMALIZE=maybe fg_run embed_client --env --gen 1 &&
    grep -q SAGE_EMBED_NORMALIZE err && fg_stop'

t_done
