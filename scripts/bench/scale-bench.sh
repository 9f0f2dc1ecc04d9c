#!/usr/bin/env bash
# Scale benchmark: how indexing and query costs grow with the corpus, SAGE next
# to SQLite FTS5, Xapian and Sphinx 2.2, on synthetic corpora of N chunks drawn
# by gen_corpus from the model fitted on Debian-docs (datasets/scale/).
# For each N, each engine:
#   - indexes the N chunks (wall s, CPU s = user+sys, peak RSS from
#     /usr/bin/time, index size on disk, input MB/s and chunks/s):
#     sage   sage-indexer build -q over the corpus's JSONL files (its default
#            threads, one per core; the others use one core)
#     fts5   python3 sqlite3: a contentless FTS5 table (content=''), porter
#            unicode61, one transaction, then 'optimize' and VACUUM
#     xapian python3-xapian TermGenerator, English stemmer, SAGE's stop words
#     sphinx Sphinx's indexer from a tsvpipe source, stem_en, SAGE's stop words
#   - answers the same generated queries, OR and AND, BM25 top 10, one thread:
#     SAGE with search_bench (sage_search in process), FTS5 and Xapian in
#     process from Python (only the library call is timed; the overhead of
#     Python around an empty call is reported as call_overhead_ms), Sphinx
#     through SphinxQL over loopback (net_bench, one connection, so its times
#     include a round trip). A warm-up pass, then up to SAGE_BENCH_REPS passes.
# Figures are printed, not enforced, and written as JSON to
# $SAGE_BUILD/bench/scale-bench.json:
#   {"machine": {cpu, cores, memory_gib, kernel},
#    "versions": {sage, sqlite, python3-xapian, libxapian30, sphinxsearch, python3},
#    "config": {reps, index_reps_below_100k, budget_s, query_budget_s, seed, queries, model},
#    "scales": [N...], "engines": ["sage", "fts5", "xapian", "sphinx"],
#    "corpora": [{n, seconds (0 when cached), cached, chunks, tokens, bytes,
#                 vocabulary, chunk_bytes_mean, chunk_bytes_median, queries, ...}],
#    "results": [{engine, n,
#                 index: {wall_s, cpu_s, rss_kb, size_bytes, mb_s, chunks_s, input_bytes},
#                 query: {qps, p50_ms, p95_ms, p99_ms, max_ms, cpu_qps, reps, queries,
#                         call_overhead_ms (fts5, xapian)},     <- OR
#                 query_and: {the same, AND}}],
#    "skipped": [{engine, n, what: "index"|"query or"|"query and", reason}],
#    "stages": [{stage, engine, n, seconds}]}        (what each step took)
# Index figures are medians over the repetitions (index_reps below 100k, one
# from 100k up, to keep the full run within 15 minutes); query figures medians over the passes; mb_s and chunks_s are
# over the input (the JSONL for SAGE, the TSV for the others) and the median wall.
#
#   scripts/bench/scale-bench.sh
# SAGE_BUILD (default build) holds the programs and build/bench/{gen_corpus,
# search_bench,net_bench} (make bench builds them). QUICK=1: N = 10000 30000,
# else 10000 100000 1000000 3000000; SAGE_BENCH_SCALES (a list) overrides both.
# SAGE_BENCH_REPS (3) query passes; SAGE_BENCH_SCALE_INDEX_REPS (3, QUICK 1)
# index runs below 100k. SAGE_BENCH_SCALE_BUDGET (240): an engine whose indexing
# time at the previous N, scaled linearly, exceeds it at the next N is skipped
# there and above, with the reason recorded; SAGE_BENCH_SCALE_QUERY_BUDGET (15)
# bounds the query seconds of one engine, mode and N the same way: fewer
# passes, then one pass over the first queries of the (shuffled) file, at
# least 50 ("queries" in the JSON says how many), or none, recorded as
# skipped. SAGE_BENCH_SCALE_MODES ("or and"). The corpora are generated once into
# $SAGE_BUILD/bench/scale/corpus-N (seed SAGE_BENCH_SCALE_SEED, default 1) and
# again when the model or gen_corpus changes; indexes go to a scratch directory
# removed at exit. Missing peers are installed with apt-get. Sphinx's searchd
# binds 127.0.0.1 on a free port and is stopped by PID.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=${SAGE_BUILD:-$repo/build}
REPS=${SAGE_BENCH_REPS:-3}
if [[ ${QUICK:-0} == 1 ]]; then
    SCALES=${SAGE_BENCH_SCALES:-10000 30000}
    IREPS=${SAGE_BENCH_SCALE_INDEX_REPS:-1}
else
    SCALES=${SAGE_BENCH_SCALES:-10000 100000 1000000 3000000}
    IREPS=${SAGE_BENCH_SCALE_INDEX_REPS:-3}
fi
BUDGET=${SAGE_BENCH_SCALE_BUDGET:-240}
QBUDGET=${SAGE_BENCH_SCALE_QUERY_BUDGET:-15}
MODES=${SAGE_BENCH_SCALE_MODES:-or and}
SEED=${SAGE_BENCH_SCALE_SEED:-1}
N_QUERIES=500
ENGINES=(sage fts5 xapian sphinx)
indexer=$BUILD/sage-indexer
gen=$BUILD/bench/gen_corpus
sbench=$BUILD/bench/search_bench
nbench=$BUILD/bench/net_bench
model=$repo/datasets/scale/model.tsv
helper=$here/scale-bench.py
PY=/usr/bin/python3     # Debian's: numpy, python3-xapian, sqlite3 with FTS5
TIME=/usr/bin/time
cache=$BUILD/bench/scale
out_json=$BUILD/bench/scale-bench.json

die() { echo "scale-bench: $*" >&2; exit 1; }
say() { echo "scale-bench: $*" >&2; }
for v in REPS IREPS BUDGET QBUDGET SEED; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number"
done
((REPS > 0 && IREPS > 0)) || die "repetitions must be positive"
read -ra scales <<<"$SCALES"
read -ra modes <<<"$MODES"
((${#scales[@]})) || die "no scales"
for n in "${scales[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "scale '$n' is not a number of chunks"
done
for m in "${modes[@]}"; do
    [[ $m == or || $m == and ]] || die "mode '$m' is not or|and"
done
for t in "$indexer" "$gen" "$sbench" "$nbench"; do
    [[ -x $t ]] || die "'$t' not found (make bench builds it, or set SAGE_BUILD)"
done
[[ -s $model ]] || die "'$model' is missing"

# shellcheck source=scripts/bench/common.sh
. "$here/common.sh"
bench_need scale-bench python3-xapian sphinxsearch time jq || exit 1
"$PY" -c 'import xapian, sqlite3; sqlite3.connect(":memory:").execute("create virtual table t using fts5(b)")' ||
    die "$PY lacks xapian or FTS5"

mkdir -p "$cache"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sage-scale.XXXXXX")
pids=()
cleanup() {
    local p i
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || continue
        for ((i = 0; i < 100; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM     # through the EXIT trap

results=$scratch/results.jsonl
: >"$results"
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
# stage NAME ENGINE N SECONDS: what one step took, for the lead's budget.
stage() {
    jq -nc --arg s "$1" --arg e "$2" --argjson n "$3" --argjson t "$4" \
        '{kind: "stage", stage: $s, engine: $e, n: $n, seconds: $t}' >>"$results"
}
skip() {
    jq -nc --arg e "$1" --argjson n "$2" --arg w "$3" --arg r "$4" \
        '{kind: "skip", engine: $e, n: $n, what: $w, reason: $r}' >>"$results"
    say "skipping $1 $3 at $2: $4"
}

# ---- the machine and the tools ----
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
cores=$(grep -c '^processor' /proc/cpuinfo)
mem=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
sqlite_ver=$("$PY" -c 'import sqlite3; print(sqlite3.sqlite_version)')
echo "== run"
echo "QUICK=${QUICK:-0} SAGE_BENCH_SCALES='${scales[*]}' SAGE_BENCH_REPS=$REPS" \
     "SAGE_BENCH_SCALE_INDEX_REPS=$IREPS SAGE_BENCH_SCALE_BUDGET=$BUDGET" \
     "SAGE_BENCH_SCALE_QUERY_BUDGET=$QBUDGET bash scripts/bench/scale-bench.sh; $(date -u +%FT%TZ)"
echo "== machine"
echo "cpu:     $cpu"
echo "cores:   $cores (nproc $(nproc)); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "memory:  $mem GiB"
echo "== tools"
echo "$("$indexer" --version) (git $rev); sqlite $sqlite_ver (python3 $(ver python3));" \
     "python3-xapian $(ver python3-xapian); sphinxsearch $(ver sphinxsearch)"
jq -nc --arg cpu "$cpu" --argjson cores "$cores" --argjson mem "$mem" --arg kernel "$(uname -r)" \
    --arg sage "$("$indexer" --version) git $rev" --arg sqlite "$sqlite_ver" \
    --arg xapian "$(ver python3-xapian)" --arg libxapian "$(ver libxapian30)" \
    --arg sphinx "$(ver sphinxsearch)" --arg python "$(ver python3)" \
    --arg scales "${scales[*]}" --argjson reps "$REPS" --argjson ireps "$IREPS" \
    --argjson budget "$BUDGET" --argjson qbudget "$QBUDGET" --argjson seed "$SEED" \
    --argjson nq "$N_QUERIES" --arg model "datasets/scale/model.tsv" --arg modes "${modes[*]}" \
    '{kind: "meta", machine: {cpu: $cpu, cores: $cores, memory_gib: $mem, kernel: $kernel},
      versions: {sage: $sage, sqlite: $sqlite, "python3-xapian": $xapian, libxapian30: $libxapian,
                 sphinxsearch: $sphinx, python3: $python},
      scales: ($scales | split(" ") | map(tonumber)), engines: ["sage", "fts5", "xapian", "sphinx"],
      config: {reps: $reps, index_reps_below_100k: $ireps, budget_s: $budget,
               query_budget_s: $qbudget, seed: $seed, queries: $nq, model: $model,
               modes: ($modes | split(" ")),
               fts5: "contentless, porter unicode61 remove_diacritics 2, optimize + VACUUM; queries drop SAGE stop words",
               xapian: "TermGenerator, Snowball english STEM_ALL, SAGE stop words, no positions, BM25Weight(1.2,0,1,0.75,0.5)",
               sphinx: "tsvpipe, stem_en, SAGE stop words, ranker expr(bm25a(1.2,0.75)), SphinxQL over loopback"}}' \
    >>"$results"

"$sbench" stopwords >"$scratch/stopwords.txt"

# ---- the corpora ----
# A corpus is kept while its stamp (model, generator, seed) holds.
stamp=$(cat "$model" "$gen" | sha256sum | cut -d' ' -f1)-$SEED-$N_QUERIES
corpus() {
    local n=$1 dir=$cache/corpus-$1 t0 secs=0 cached=true
    if [[ $(cat "$dir/stamp" 2>/dev/null) != "$stamp" ]]; then
        cached=false
        rm -rf "$dir" "$dir.tmp"
        mkdir -p "$dir.tmp"
        say "generating $n chunks"
        t0=$(now)
        "$gen" "$model" "$n" "$SEED" "$dir.tmp" "$N_QUERIES" || die "gen_corpus failed"
        secs=$(since "$t0")
        echo "$stamp" >"$dir.tmp/stamp"
        mv "$dir.tmp" "$dir"
        stage generate - "$n" "$secs"
    fi
    jq -c --argjson n "$n" --argjson s "$secs" --argjson c "$cached" \
        '{kind: "corpus", n: $n, seconds: $s, cached: $c} + .' "$dir/stats.json" >>"$results"
}

# ---- indexing ----
# index_cmd ENGINE DIR OUT: the command that builds ENGINE's index of the
# corpus in DIR at OUT, into the array cmd.
index_cmd() {
    case $1 in
        sage) cmd=("$indexer" build -q --out "$3" "$2/corpus") ;;
        fts5) cmd=("$PY" "$helper" fts5-index "$2/chunks.tsv" "$3") ;;
        xapian) cmd=("$PY" "$helper" xapian-index "$2/chunks.tsv" "$scratch/stopwords.txt" "$3") ;;
        sphinx) cmd=(indexer --config "$scratch/sphinx.conf" --quiet chunks) ;;
    esac
}
index_size() {
    case $1 in
        sage) stat -c %s "$2" ;;
        *) du -sb "$2" | cut -f1 ;;
    esac
}

# Sphinx: as search-bench.sh configures it (letters and digits as word
# characters, English stemmer, SAGE's stop words, field lengths for bm25a).
sphinx_conf() {
    cat >"$scratch/sphinx.conf" <<EOF
source chunks
{
    type = tsvpipe
    tsvpipe_command = cat $1/chunks.tsv
    tsvpipe_field = text
}
index chunks
{
    source = chunks
    path = $2/chunks
    docinfo = extern
    morphology = stem_en
    stopwords = $scratch/stopwords.txt
    min_word_len = 1
    charset_table = 0..9, A..Z->a..z, a..z, U+00C0..U+00D6->U+00E0..U+00F6, \\
        U+00D8..U+00DE->U+00F8..U+00FE, U+00DF..U+00F6, U+00F8..U+00FF, \\
        U+0410..U+042F->U+0430..U+044F, U+0430..U+044F
    index_field_lengths = 1
}
indexer
{
    mem_limit = 512M
}
searchd
{
    listen = 127.0.0.1:$3:mysql41
    log = $scratch/searchd.log
    pid_file = $scratch/searchd.pid
    binlog_path =
    workers = threads
}
EOF
}

# ---- queries ----
# query_run ENGINE MODE PASSES IX QUERIES: PASSES timed passes after a warm-up,
# one JSON line each on stdout.
query_run() {
    local e=$1 mode=$2 passes=$3 ix=$4 q=$5 i
    case $e in
        sage) "$sbench" run "$ix" "$q" "$mode" "$passes" ;;
        fts5) "$PY" "$helper" fts5-run "$ix" "$scratch/stopwords.txt" "$q" "$mode" "$passes" ;;
        xapian) "$PY" "$here/search-bench.py" xapian-run "$ix" "$scratch/stopwords.txt" "$q" "$mode" "$passes" ;;
        sphinx)
            "$nbench" sphinxql --port "$sph_port" --queries "$q" --mode "$mode" >/dev/null
            for ((i = 0; i < passes; i++)); do
                "$nbench" sphinxql --port "$sph_port" --queries "$q" --mode "$mode" |
                    jq -c --argjson r "$i" --arg m "$mode" '. + {engine: "sphinx", mode: $m, rep: $r}'
            done
            ;;
    esac
}

sph_pid=
sphinx_start() {
    local i
    searchd --config "$scratch/sphinx.conf" --nodetach </dev/null >"$scratch/searchd.out" 2>&1 &
    sph_pid=$!
    pids+=("$sph_pid")
    for ((i = 0; i < 600; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$sph_port") 2>/dev/null && return 0
        kill -0 "$sph_pid" 2>/dev/null || { cat "$scratch/searchd.out" >&2; die "sphinx searchd exited"; }
        sleep 0.1
    done
    die "sphinx searchd does not listen after 60 s"
}
sphinx_stop() {
    local i
    kill -TERM "$sph_pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$sph_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$sph_pid" 2>/dev/null || true
    wait "$sph_pid" 2>/dev/null || true
}

# The last N each engine indexed and its median wall s, and the seconds of one
# query pass there per mode: the linear projections to the next N.
declare -A last_n last_wall last_pass

for n in "${scales[@]}"; do
    corpus "$n"
    dir=$cache/corpus-$n
    jsonl_bytes=$(stat -c %s "$dir"/corpus/*.jsonl | awk '{ s += $1 } END { print s }')
    tsv_bytes=$(stat -c %s "$dir/chunks.tsv")
    cat "$dir"/corpus/*.jsonl "$dir/chunks.tsv" >/dev/null      # warm the page cache
    ireps=$IREPS
    ((n < 100000)) || ireps=1
    for e in "${ENGINES[@]}"; do
        if [[ -n ${last_n[$e]:-} ]]; then
            proj=$(awk -v w="${last_wall[$e]}" -v a="${last_n[$e]}" -v b="$n" 'BEGIN { printf "%.0f", w * b / a }')
            if ((proj > BUDGET)); then
                skip "$e" "$n" index "projected $proj s from ${last_n[$e]} > budget $BUDGET s"
                continue
            fi
        fi
        ix=$scratch/ix-$e
        [[ $e == sage ]] && ix=$scratch/ix-sage.sage
        input=$tsv_bytes
        [[ $e == sage ]] && input=$jsonl_bytes
        if [[ $e == sphinx ]]; then
            sph_port=$(bench_free_port)
            sphinx_conf "$dir" "$ix" "$sph_port"
        fi
        : >"$scratch/times"
        for ((r = 0; r < ireps; r++)); do
            rm -rf "$ix" "$ix.sha256"
            [[ $e == sphinx ]] && mkdir -p "$ix"
            say "indexing $n chunks with $e (run $((r + 1)) of $ireps)"
            t0=$(now)
            index_cmd "$e" "$dir" "$ix"
            if ! "$TIME" -f '%e %U %S %M' -o "$scratch/time" "${cmd[@]}" >"$scratch/index.out" 2>&1; then
                cat "$scratch/index.out" >&2
                die "$e failed to index $n chunks"
            fi
            stage index "$e" "$n" "$(since "$t0")"
            echo "$(cat "$scratch/time") $(index_size "$e" "$ix")" >>"$scratch/times"
        done
        # the run with the median wall time
        read -r wall u s rss size < <(sort -g "$scratch/times" | sed -n "$(((ireps + 1) / 2))p")
        jq -nc --arg e "$e" --argjson n "$n" --argjson wall "$wall" --argjson u "$u" --argjson s "$s" \
            --argjson rss "$rss" --argjson size "$size" --argjson in "$input" --argjson reps "$ireps" \
            '{kind: "index", engine: $e, n: $n, wall_s: $wall, cpu_s: ($u + $s), rss_kb: $rss,
              size_bytes: $size, input_bytes: $in, reps: $reps,
              mb_s: (if $wall > 0 then ($in / 1e6 / $wall * 100 | round) / 100 else null end),
              chunks_s: (if $wall > 0 then ($n / $wall | round) else null end)}' |
            tee -a "$results" >&2
        last_n[$e]=$n last_wall[$e]=$wall

        [[ $e == sphinx ]] && sphinx_start
        for mode in "${modes[@]}"; do
            passes=$REPS nq=$N_QUERIES qfile=$dir/queries.txt
            prev=${last_pass[$e-$mode]:-}
            if [[ -n $prev ]]; then
                # the seconds of one query at the previous N, scaled linearly:
                # as many passes as fit the budget with the warm-up, or, when
                # not even one does, the first queries of the file (in random
                # order) that do, or none below 50
                read -r pn ps <<<"$prev"
                read -r passes nq proj < <(awk -v t="$ps" -v a="$pn" -v b="$n" -v q="$QBUDGET" \
                    -v r="$REPS" -v m="$N_QUERIES" 'BEGIN {
                        t = t * b / a; p = t * m
                        f = p > 0 ? int(q / p) - 1 : r
                        if (f >= 1) print (f < r ? f : r), m, p
                        else print 1, int(q / (2 * t)), p }')
                if ((nq < 50)); then
                    skip "$e" "$n" "query $mode" "a pass projected $(printf %.0f "$proj") s from $pn; 50 queries twice > budget $QBUDGET s"
                    continue
                fi
                if ((nq < N_QUERIES)); then
                    head -n "$nq" "$dir/queries.txt" >"$scratch/queries.txt"
                    qfile=$scratch/queries.txt
                fi
            fi
            say "querying $e at $n, $mode: $nq queries, a warm-up pass and $passes"
            t0=$(now)
            query_run "$e" "$mode" "$passes" "$ix" "$qfile" >"$scratch/q.out" ||
                die "$e queries failed at $n ($mode)"
            secs=$(since "$t0")
            stage "query $mode" "$e" "$n" "$secs"
            jq -c --argjson n "$n" --argjson nq "$nq" '{kind: "query", n: $n} + . + {queries: $nq}' \
                "$scratch/q.out" | tee -a "$results" >&2
            last_pass[$e-$mode]="$n $(awk -v t="$secs" -v p="$passes" -v q="$nq" 'BEGIN { printf "%.6f", t / (p + 1) / q }')"
        done
        [[ $e == sphinx ]] && sphinx_stop
        rm -rf "$ix" "$ix.sha256"
    done
done

echo
"$PY" "$helper" report "$results" "$out_json"
echo
echo "(JSON: $out_json)"
