#!/usr/bin/env bash
# The local embedding server (scripts/embedder, Universal Sentence Encoder
# Lite from npm): the OpenAI embeddings API with its errors and limits,
# vectors that carry meaning (a paraphrase is nearer than an unrelated
# sentence), concurrent requests, and an index built through SAGE's own
# embedding client against it.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/embedder.sh"

# post BODY: POSTs BODY to /v1/embeddings; the answer to out.json, the status printed.
post() {
    curl -s -o out.json -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$1" "$EMB_URL/v1/embeddings"
}

# The cosine of the vectors i and j of out.json.
cosine() {
    jq --argjson i "$1" --argjson j "$2" '
        [.data[$i].embedding, .data[$j].embedding] as [$a, $b] |
        def dot($x; $y): [range(0; $x | length) | $x[.] * $y[.]] | add;
        dot($a; $b) / ((dot($a; $a) | sqrt) * (dot($b; $b) | sqrt))' out.json
}

emb_start "$T_ROOT/emb" --max-inputs 8 --max-body 20000 --max-chars 5000 || { echo "Bail out! embedder"; exit 1; }

t_ok 'health and models' '
    curl -sf "$EMB_URL/health" | jq -e ".status == \"ok\" and .dimensions == 512 and .workers >= 1" &&
    curl -sf "$EMB_URL/v1/models" | jq -e ".data[0].id == \"universal-sentence-encoder-lite\""'

t_ok 'a string and a list of strings, 512 numbers each, with usage' '
    [ "$(post "{\"input\": \"hello\", \"model\": \"m\"}")" = 200 ] &&
    jq -e ".object == \"list\" and .model == \"m\" and (.data | length) == 1 and
           (.data[0].embedding | length) == 512 and .usage.prompt_tokens > 0" out.json &&
    [ "$(post "{\"input\": [\"a b\", \"c\", \"d e f\"], \"dimensions\": 512}")" = 200 ] &&
    jq -e "[.data[].index] == [0, 1, 2] and ([.data[].embedding | length] | unique) == [512]" out.json'

t_ok 'the vectors carry meaning: a paraphrase is nearer than an unrelated sentence' '
    [ "$(post "{\"input\": [\"How do I install a program on Debian?\",
                           \"Use apt-get install to download and set up software packages.\",
                           \"The heron stood still in the shallow river at dawn.\"]}")" = 200 ] &&
    near=$(cosine 0 1) && far=$(cosine 0 2) && echo "near $near, far $far" &&
    jq -en "$near > $far + 0.1"'

t_ok 'bad requests get OpenAI-style errors' '
    [ "$(post "not json")" = 400 ] && jq -e ".error.type == \"invalid_request_error\"" out.json &&
    [ "$(post "{\"input\": \"x\", \"dimensions\": 384}")" = 400 ] && jq -e ".error.param == \"dimensions\"" out.json &&
    [ "$(post "{\"input\": []}")" = 400 ] && jq -e ".error.param == \"input\"" out.json &&
    [ "$(post "{\"input\": [1, 2]}")" = 400 ] &&
    [ "$(post "{\"input\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}")" = 400 ] &&
    grep -q "more than 8" out.json &&
    long=$(head -c 6000 /dev/zero | tr "\0" a) && [ "$(post "{\"input\": \"$long\"}")" = 400 ] &&
    big=$(head -c 30000 /dev/zero | tr "\0" a) && [ "$(post "{\"input\": \"$big\"}")" = 413 ] &&
    [ "$(curl -s -o out.json -w "%{http_code}" "$EMB_URL/v1/embeddings")" = 405 ] &&
    [ "$(curl -s -o out.json -w "%{http_code}" "$EMB_URL/nowhere")" = 404 ] &&
    curl -sf "$EMB_URL/health" >/dev/null'

t_ok 'concurrent requests all answer, sharing the model' '
    for i in 1 2 3 4 5 6; do
        curl -s -o "c$i.json" -w "%{http_code}\n" -H "Content-Type: application/json" \
            --data-binary "{\"input\": [\"request $i one\", \"request $i two\"]}" \
            "$EMB_URL/v1/embeddings" >"c$i.status" &
    done; wait &&
    [ "$(cat c*.status | sort -u)" = 200 ] &&
    for i in 1 2 3 4 5 6; do jq -e "(.data | length) == 2" "c$i.json" >/dev/null || exit 1; done'

t_ok 'sage-indexer embeds a corpus through it' '
    sage-indexer build -q --out s.sage --report r.json --embed-url "$EMB_URL" --embed-model "$EMB_MODEL" \
        --embed-batch 8 "$SAGE_TOP/datasets/sample" &&
    jq -e ".summary.embedded == .summary.chunks and .summary.chunks > 0" r.json &&
    sage-indexer info --json s.sage | jq -e ".build.embedding | .status == \"ok\" and .dim == 512 and .model == \"universal-sentence-encoder-lite\""'

# first hit's path for query $2 in mode $1 over the index of test 6
first() {
    sage-indexer query --json -k 3 --mode "$1" --embed-url "$EMB_URL" "$T_ROOT/6/s.sage" "$2" |
        jq -r ".results[0].path // \"-\""
}

t_ok 'a query sharing no word with its document: found by dense and hybrid, not by BM25' '
    ! grep -qiw "power\|outage" "$SAGE_TOP/datasets/sample/notes/power-failure.md" &&
    [ "$(first bm25 "power outage")" = - ] &&
    [ "$(first dense "power outage")" = notes/power-failure.md ] &&
    [ "$(first hybrid "power outage")" = notes/power-failure.md ] &&
    [ "$(first dense "power cut")" = notes/power-failure.md ]'

emb_stop
echo $? >"$T_ROOT/emb.rc"
t_ok 'SIGTERM stops it cleanly' '[ "$(cat "$T_ROOT/emb.rc")" = 0 ]'

t_done
