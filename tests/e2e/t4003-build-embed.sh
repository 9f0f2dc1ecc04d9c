#!/usr/bin/env bash
# sage-indexer build with --embed-url against the fake GPU server: every
# chunk is embedded exactly once and stored as VECTORS (unit rows of the
# server's dimension) with the model settings in the build record; injected
# errors, 429s and delays change nothing in the file; --reuse sends only
# chunks whose text changed; a dead server or a
# wrong dimension fails the build with no index, or, with
# --embeddings=optional, leaves a lexical-only index that says why.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/fakegpu.sh"
S=$SAGE_TOP/datasets/sample

# build OUT [ARGS...]: the sample corpus with embeddings from the fake server
build() {
    local out=$1
    shift
    sage-indexer build -q --out "$out" --embed-url "$FG_URL" --embed-model fake \
        --embed-batch 8 "$@" "$S"
}
# The VECTORS section of $1: "dim n" and one line per row with its L2 norm.
vectors() {
    sage-indexer info --json "$1" >info.json &&
    python3 - "$1" "$(jq '.sections[] | select(.name == "vectors") | .offset' info.json)" <<'PY'
import math, struct, sys
data = open(sys.argv[1], "rb").read()
off = int(sys.argv[2])
dim, flags, n, off_f32 = struct.unpack_from("<IIQQ", data, off)
print(dim, n, flags)
stride = (4 * dim + 63) // 64 * 64
for i in range(n):
    row = struct.unpack_from("<%df" % dim, data, off + off_f32 + i * stride)
    print("%.6f" % math.sqrt(sum(x * x for x in row)))
PY
}

t_ok 'every chunk embedded once, stored as unit rows, settings in the build record' '
    fg_start srv --dim 48 --max-inputs 8 &&
    build e.sage --embed-doc-prefix "search_document: " --embed-query-prefix "search_query: " &&
    n=$(sage-indexer info --json e.sage | jq .counts.chunks) && [ "$n" -gt 10 ] &&
    vectors e.sage >v && [ "$(head -1 v)" = "48 $n 1" ] &&
    [ "$(tail -n +2 v | sort -u)" = "1.000000" ] &&
    jq -e ".build.embedding | .status == \"ok\" and .model == \"fake\" and .dim == 48 and
        .normalized and .document_prefix == \"search_document: \" and
        .query_prefix == \"search_query: \" and .embedded == $n" info.json &&
    fg_stats >stats.json &&
    fg_check "(.served | length) == $n and ([.served[]] | all(. == 1)) and .inputs == $n" stats.json &&
    fg_stop'

t_ok 'through 30 % errors, 429s with Retry-After and delays: the same file' '
    fg_start srv --dim 48 --max-inputs 8 &&
    build clean.sage && fg_stop &&
    fg_start srv2 --dim 48 --max-inputs 8 --fail-next 2 --error-rate 0.3 \
        --error-statuses 503,429,500 --retry-after 1 --jitter-ms 40 --seed 7 &&
    build faulty.sage --embed-batch 2 --embed-retries 30 &&
    cmp clean.sage faulty.sage &&
    fg_stats >stats.json && fg_check "([.served[]] | all(. == 1)) and .status[\"503\"] > 0" stats.json &&
    fg_stop'

t_ok 'a dead server fails the build: exit 1, the reason, no index' '
    fg_start srv --dim 48 && fg_stop &&
    t_status 1 build dead.sage --embed-retries 2 --embed-retry-budget-ms 500 &&
    ! test -e dead.sage && grep -q "no index written: embeddings failed" err &&
    grep -q "127.0.0.1:$FG_PORT" err'

t_ok '--embeddings=optional: a lexical-only index that says why' '
    fg_start srv --dim 48 && fg_stop &&
    build opt.sage --embeddings optional --embed-retries 2 --embed-retry-budget-ms 500 2>err &&
    sage-indexer info --json opt.sage >info.json &&
    jq -e "[.sections[].name] | index(\"vectors\") == null" info.json &&
    jq -e ".build.embedding.status == \"failed\" and (.build.embedding.reason | length) > 0" info.json &&
    sage-indexer query opt.sage kestrel >q && test -s q'

t_ok 'a wrong dimension or a malformed answer fails the build' '
    fg_start srv --dim 48 &&
    t_status 1 build d.sage --embed-dim 16 && grep -qi "dimension" err && ! test -e d.sage &&
    fg_faults "{\"malformed\": true}" &&
    t_status 1 build m.sage --embed-retries 1 && ! test -e m.sage && fg_stop'

# The xxh3 of the VECTORS section of $1.
vec_sum() {
    sage-indexer info --json "$1" | jq -r '.sections[] | select(.name == "vectors") | .xxh3'
}

t_ok '--reuse: an unchanged corpus sends nothing, a changed file sends only its chunks' '
    cp -r "$S" corpus && fg_start srv --dim 48 &&
    sage-indexer build -q --out one.sage --embed-url "$FG_URL" --embed-model fake corpus &&
    n=$(sage-indexer info --json one.sage | jq .counts.chunks) && fg_reset &&
    sage-indexer build -q --out two.sage --embed-url "$FG_URL" --embed-model fake \
        --reuse one.sage --report two.json corpus &&
    jq -e ".summary.reused == $n and .summary.embedded == 0" two.json &&
    fg_stats >stats.json && fg_check ".inputs == 0 and .requests == 0" stats.json &&
    sage-indexer info --json two.sage >info.json &&
    jq -e ".build.embedding | .reused == $n and .embedded == 0" info.json &&
    [ "$(vec_sum one.sage)" = "$(vec_sum two.sage)" ] &&
    f=$(find corpus -name "*.md" | sort | head -1) && printf "\nA new closing line.\n" >>"$f" &&
    fg_reset &&
    sage-indexer build -q --out three.sage --embed-url "$FG_URL" --embed-model fake \
        --reuse two.sage --report report.json corpus &&
    changed=$(jq --arg f "$f" "[.files[] | select(.path == \$f) | .chunks] | add" report.json) &&
    [ "$changed" -gt 0 ] && fg_stats >stats.json &&
    fg_check ".inputs <= $changed and .inputs > 0" stats.json &&
    sent=$(jq .inputs stats.json) && sage-indexer info --json three.sage >info.json &&
    jq -e ".build.embedding | .embedded == $sent and .reused + .embedded == $(jq .counts.chunks info.json)" info.json &&
    sage-indexer build -q --out four.sage --embed-url "$FG_URL" --embed-model other \
        --reuse two.sage corpus 2>err && grep -q "not reusing its vectors: another model" err &&
    t_status 1 sage-indexer build -q --out five.sage --embed-url "$FG_URL" --embed-model fake \
        --reuse missing.sage corpus && fg_stop'

t_ok 'bad settings are usage errors' '
    t_status 2 sage-indexer build --out x.sage --embeddings sometimes "$S" &&
    grep -q "expected required, optional or off" err &&
    t_status 2 sage-indexer build --out x.sage --embed-url http://127.0.0.1:9 "$S" &&
    grep -q "needs --embed-model" err &&
    t_status 2 sage-indexer build --out x.sage --embed-normalize maybe "$S" &&
    sage-indexer build -q --out off.sage --embeddings off --embed-url http://127.0.0.1:9 "$S" &&
    ! sage-indexer info --json off.sage | jq -e ".build.embedding" >/dev/null'

t_done
