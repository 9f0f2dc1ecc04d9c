#!/usr/bin/env bash
# sage-searchd start-up: time from exec to the first 200 from /readyz, over
# searchable indexes of growing size built from a synthetic corpus (JSONL of
# words drawn from a skewed 50,000-word vocabulary, the same for the same
# awk). Each size is timed with the file in the page cache (median of
# SAGE_BENCH_RUNS) and evicted from it first (one run, posix_fadvise through
# dd iflag=nocache), next to sage-indexer verify and info on the same file,
# which show how much of start-up is the full verification. searchd verifies
# a file in full once per file version and keeps a stamp (.NAME.verified);
# ready_ms and ready_cold are starts with the stamp in place (the usual
# restart), first_ms a start with the stamp removed (a file never seen) and
# always_ms --verify=always (every byte read at every start). Corpora and
# indexes stay in SAGE_BENCH_DIR and are reused.
# The peer is Sphinx 2.2's searchd (Debian's sphinxsearch), over an index of
# the same corpus (title and text fields, English stemmer, field lengths kept,
# as in search-bench.sh) at the first size only: exec to its first answer
# over SphinxQL (net_bench --wait, which retries connecting and the query
# every millisecond), the median of the same number of runs.
#   SAGE_BENCH_SIZES   corpus sizes in MB (default "100 300 1000": the last
#                      gives an index of about 600 MB)
# QUICK=1: one size of 30 MB, 3 runs (unless set). Every run's figures are
# recorded through fig.py in $SAGE_BUILD/bench/figures/startup.json.
set -euo pipefail
: "${SAGE_BUILD:?set SAGE_BUILD to the build directory (make bench does)}"
here=$(cd "$(dirname "$0")" && pwd)
if [ "${QUICK:-0}" = 1 ]; then
    sizes=${SAGE_BENCH_SIZES:-30}
    runs=${SAGE_BENCH_RUNS:-3}
else
    sizes=${SAGE_BENCH_SIZES:-100 300 1000}
    runs=${SAGE_BENCH_RUNS:-5}
fi
work=${SAGE_BENCH_DIR:-${TMPDIR:-/tmp}/sage-bench-startup}
figs=$SAGE_BUILD/bench/figures/startup.json
fig() { /usr/bin/python3 "$here/fig.py" "$@"; }
rm -f "$figs"
fig title "$figs" "sage-searchd start-up"
fig meta "$figs" command "SAGE_BUILD=$SAGE_BUILD QUICK=${QUICK:-0} SAGE_BENCH_SIZES='$sizes' SAGE_BENCH_RUNS=$runs bash scripts/bench/startup.sh"
fig meta "$figs" corpus "synthetic JSONL, words from a skewed 50,000-word vocabulary, documents of about 3 kB; corpus sizes (MB): $sizes"
fig meta "$figs" settings "$runs runs per figure; ready: exec to the first 200 from /readyz; answer: exec to the first search answer (10 hits)"
chunk=${SAGE_BENCH_CHUNK:-2000}
searchd=$SAGE_BUILD/sage-searchd
indexer=$SAGE_BUILD/sage-indexer
nbench=$SAGE_BUILD/bench/net_bench
[ -x "$nbench" ] || { echo "startup: '$nbench' not found (make build/bench/net_bench)" >&2; exit 1; }
# shellcheck source=scripts/bench/common.sh
. "$here/common.sh"
bench_need startup sphinxsearch jq || exit 1
mkdir -p "$work"
pid=
bench_nap_open "$work"

cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    return 0
}
trap cleanup EXIT

now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }

# MB megabytes of JSONL documents of about 3 kB, in files of at most 50 MB
# (under the indexer's default --max-file-size).
make_corpus() {
    local mb=$1 dir=$2
    mkdir -p "$dir.part"
    awk -v total=$((mb * 1000000)) -v dir="$dir.part" 'BEGIN {
        srand(42)
        split("ba be bi bo bu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu " \
              "ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo vu za ze zi zo zu", syl, " ")
        for (i = 0; i < 50000; i++) {
            w = ""; n = i
            do { w = w syl[n % 50 + 1]; n = int(n / 50) } while (n > 0)
            vocab[i] = w "x"
        }
        file = 0; out = sprintf("%s/part%03d.jsonl", dir, file); bytes = 0; fbytes = 0
        for (d = 0; bytes < total; d++) {
            t = ""
            for (j = 0; j < 450; j++) {
                r = rand()
                t = t " " vocab[int(r * r * r * 50000)]
            }
            line = sprintf("{\"id\":\"d%d\",\"title\":\"document %d\",\"text\":\"%s\"}", d, d, t)
            print line > out
            bytes += length(line) + 1; fbytes += length(line) + 1
            if (fbytes > 50000000) {
                close(out); file++; fbytes = 0
                out = sprintf("%s/part%03d.jsonl", dir, file)
            }
        }
    }'
    mv "$dir.part" "$dir"
}

# Milliseconds from exec of searchd over directory $1 to the first 200 from
# /readyz. The port is only known once searchd writes it, so the time to the
# port file is part of the figure.
time_ready() {
    local dir=$1 port t0 t1 t2 reply
    shift
    rm -f "$work/port"
    t0=$(now_us)
    "$searchd" --index-dir "$dir" --listen 127.0.0.1:0 --port-file "$work/port" "$@" \
        2>"$work/searchd.log" &
    pid=$!
    until [ -s "$work/port" ]; do
        kill -0 "$pid" 2>/dev/null || { cat "$work/searchd.log" >&2; return 1; }
        bench_nap 0.001
    done
    read -r port <"$work/port"
    # bash's own /dev/tcp: no process started per poll
    until exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null &&
          printf 'GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 &&
          read -r reply <&3 && [[ $reply == *" 200 "* ]]; do
        exec 3>&- 2>/dev/null || true
        bench_nap 0.001
    done
    t1=$(now_us)
    exec 3>&-
    # then the first answer to a search, hits and their documents included
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /v1/search?q=banax&k=10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
    read -r reply <&3
    [[ $reply == *" 200 "* ]] || { echo "search failed: $reply" >&2; return 1; }
    t2=$(now_us)
    exec 3>&-
    # SIGKILL: a graceful stop waits out civetweb's 2 s poll quantum
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
    echo "$(((t1 - t0) / 1000)) $(((t2 - t0) / 1000))"
}

# Sphinx's index of corpus $1 in directory $2 (built once), and its config
# with a free port.
sphinx_index() {
    local corpus=$1 dir=$2 port
    port=$(bench_free_port)
    mkdir -p "$dir"
    cat >"$dir/sphinx.conf" <<EOF
source docs
{
    type = tsvpipe
    tsvpipe_command = cat $dir/docs.tsv
    tsvpipe_field = title
    tsvpipe_field = text
}
index docs
{
    source = docs
    path = $dir/docs
    docinfo = extern
    morphology = stem_en
    min_word_len = 1
    index_field_lengths = 1
}
indexer
{
    mem_limit = 512M
}
searchd
{
    listen = 127.0.0.1:$port:mysql41
    log = $dir/searchd.log
    pid_file = $dir/searchd.pid
    binlog_path =
    workers = threads
}
EOF
    echo "$port" >"$dir/port"
    [ -s "$dir/docs.sph" ] && return 0
    jq -r '[.title, .text] | @tsv' "$corpus"/*.jsonl | awk '{ print NR "\t" $0 }' >"$dir/docs.tsv"
    indexer --config "$dir/sphinx.conf" --quiet docs >"$dir/indexer.log" 2>&1 ||
        { cat "$dir/indexer.log" >&2; return 1; }
    rm -f "$dir/docs.tsv"
}

# Milliseconds from exec of Sphinx searchd (config in directory $1) to its
# first answer of the same query over SphinxQL.
time_sphinx() {
    local dir=$1 t0 t2 port
    read -r port <"$dir/port"
    t0=$(now_us)
    searchd --config "$dir/sphinx.conf" --nodetach </dev/null >"$dir/searchd.out" 2>&1 &
    pid=$!
    "$nbench" sphinxql --port "$port" --queries "$work/query" --index docs --wait 60 \
        >/dev/null || { cat "$dir/searchd.out" >&2; return 1; }
    t2=$(now_us)
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
    echo $(((t2 - t0) / 1000))
}

# the median of each of the two columns of its input
mid() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
median() {
    local lines
    lines=$(cat)
    echo "$(cut -d' ' -f1 <<<"$lines" | mid) $(cut -d' ' -f2 <<<"$lines" | mid)"
}
ms_of() { local t0 t1; t0=$(now_us); "$@" >/dev/null; t1=$(now_us); echo $(((t1 - t0) / 1000)); }
evict() { dd if="$1" iflag=nocache count=0 status=none; }

echo banax >"$work/query"
sphinx_mb=${sizes%% *}
fmt='%-9s %-9s %-8s %-9s %-10s %-11s %-9s %-10s %-10s %-10s %-9s %-10s\n'
# shellcheck disable=SC2059
printf "$fmt" corpus index build_s ready_ms answer_ms ready_cold first_ms always_ms \
    verify_ms open_ms sphinx_ms
for mb in $sizes; do
    corpus=$work/corpus-$mb
    dir=$work/idx-$mb
    build_s=-
    if ! [ -f "$dir/bench.sage" ]; then
        [ -d "$corpus" ] || make_corpus "$mb" "$corpus"
        mkdir -p "$dir"
        t0=$(now_us)
        "$indexer" build -q --chunk-size "$chunk" --out "$dir/bench.sage" \
            --library bench="$corpus" >/dev/null 2>"$work/build-$mb.log"
        build_s=$((($(now_us) - t0) / 1000000))
    fi
    size=$(stat -c %s "$dir/bench.sage")
    time_ready "$dir" >/dev/null        # warms the page cache
    warm_runs=$(for _ in $(seq "$runs"); do time_ready "$dir"; done)
    warm=$(median <<<"$warm_runs")
    evict "$dir/bench.sage"
    cold=$(time_ready "$dir")
    first_runs=$(for _ in $(seq "$runs"); do rm -f "$dir/.bench.sage.verified"; time_ready "$dir"
                 done)
    first=$(median <<<"$first_runs")
    always_runs=$(for _ in $(seq "$runs"); do time_ready "$dir" --verify=always; done)
    always=$(median <<<"$always_runs")
    verify_runs=$(for _ in $(seq 3); do ms_of "$indexer" verify "$dir/bench.sage"; done)
    verify=$(mid <<<"$verify_runs")
    open_runs=$(for _ in $(seq 3); do ms_of "$indexer" info "$dir/bench.sage"; done)
    open=$(mid <<<"$open_runs")
    sphinx=-
    if [ "$mb" = "$sphinx_mb" ]; then
        sphinx_index "$corpus" "$work/sphinx-$mb"
        cat "$work/sphinx-$mb"/docs.* >/dev/null
        time_sphinx "$work/sphinx-$mb" >/dev/null      # warms the page cache
        sphinx_runs=$(for _ in $(seq "$runs"); do time_sphinx "$work/sphinx-$mb"; done)
        sphinx=$(mid <<<"$sphinx_runs")
        sph_size=$(cat "$work/sphinx-$mb"/docs.* | wc -c)
    fi
    read -r warm answer <<<"$warm"
    # every run's figure, column $2 of the runs in $3: record ID COLUMN RUNS WHAT
    on="index of $((size / 1000000)) MB (synthetic corpus of $mb MB)"
    record() {
        local v
        mapfile -t v < <(cut -d' ' -f"$2" <<<"$3")
        fig add "$figs" "$1-${mb}mb" sage "${v[@]}" --unit ms --better lower --what "$4, $on"
    }
    record startup-ready-ms 1 "$warm_runs" "sage-searchd exec to ready (/readyz 200), verification stamp in place, page cache warm"
    record startup-answer-ms 2 "$warm_runs" "exec to the first search answer (10 hits), page cache warm (sage-searchd: stamp in place, HTTP; Sphinx searchd: SphinxQL)"
    if [ "$sphinx" != - ]; then
        mapfile -t v <<<"$sphinx_runs"
        fig add "$figs" "startup-answer-ms-${mb}mb" sphinx "${v[@]}"
        fig note "$figs" "Sphinx searchd at $mb MB: its index of the same corpus is $((sph_size / 1000000)) MB (every file of it)"
    fi
    record startup-ready-cold-ms 1 "$cold" "sage-searchd exec to ready, stamp in place, index evicted from the page cache"
    record startup-first-ms 1 "$first_runs" "sage-searchd exec to ready for a file never seen (stamp removed: full verification first)"
    record startup-always-ms 1 "$always_runs" "sage-searchd exec to ready with --verify=always"
    record verify-ms 1 "$verify_runs" "sage-indexer verify (process), warm"
    record open-ms 1 "$open_runs" "sage-indexer info (open alone, process), warm"
    # shellcheck disable=SC2059
    printf "$fmt" "${mb}MB" "$((size / 1000000))MB" "$build_s" "$warm" "$answer" \
        "${cold% *}" "${first% *}" "${always% *}" "$verify" "$open" "$sphinx"
done
echo "ready_ms: median of $runs warm runs with a verification stamp (exec to the first 200 from"
echo "/readyz); answer_ms: exec to the first answer of a search (10 hits, documents decoded);"
echo "ready_cold: the same with"
echo "the index evicted from the page cache first; first_ms: stamp removed before each start"
echo "(searchd verifies in full, then stamps); always_ms: --verify=always;"
echo "verify_ms / open_ms: sage-indexer verify / info on the same file (warm), the cost of"
echo "the full check searchd makes before serving, and of opening alone;"
echo "sphinx_ms: Sphinx searchd exec to its first SphinxQL answer of the same query (first size only)"
