#!/usr/bin/env bash
# Search benchmark on the debian-docs corpus and its 500 queries
# (datasets/debian-docs), every SAGE figure next to a peer's from the same run:
#   1. in process, one thread, BM25 top 10, AND and OR: libsage's sage_search
#      vs Xapian (python3-xapian) over the same chunk texts;
#   2. over the network: sage-searchd (HTTP keep-alive) vs Sphinx 2.2 searchd
#      (SphinxQL) with one client, then 16 (the same C client, net_bench, for
#      both), and wrk against sage-searchd;
#   3. hot swap: the latency around each of several index swaps under steady
#      load (AND queries, paced) vs the steady latencies: sage-searchd swapping
#      between two copies of its index (a symlink renamed), then Sphinx
#      searchd under the same load rotating between two copies of its own (the
#      copy linked in as chunks.new.*, SIGHUP, seamless rotation); each swap is
#      done when the server's log says so.
# Figures are printed, not enforced (a shared machine makes pass/fail flaky),
# and written as JSON to $SAGE_BUILD/bench/search-bench.json.
#
#   scripts/bench/search-bench.sh [CORPUS]    CORPUS defaults to build/debian-docs
#
# SAGE_BUILD (default build) holds the programs and build/bench/{search_bench,
# net_bench} (make bench builds them). SAGE_BENCH_REPS (default 3) rounds of
# each measurement, engines interleaved; SAGE_BENCH_SECONDS (5) per 16-client
# run; SAGE_BENCH_SWAPS (5) swaps at SAGE_BENCH_SWAP_RATE (1000) requests a
# second. The index and the peers' indexes are kept in $SAGE_BUILD/bench/search/
# and rebuilt when the corpus or sage-indexer changes; the hot-swap load's
# per-request timeline and the swap times go next to the JSON. Missing peers
# (python3-xapian, sphinxsearch, wrk) are installed with apt-get. Servers bind
# 127.0.0.1 on free ports and are stopped by PID at exit. Every pass's figures
# are also recorded through fig.py in $SAGE_BUILD/bench/figures/search-bench.json.
# QUICK=1: one round, 2 s runs, 2 swaps 3 s apart (unless the variables are set).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=${SAGE_BUILD:-$repo/build}
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    REPS=${SAGE_BENCH_REPS:-1}
    SECONDS_C16=${SAGE_BENCH_SECONDS:-2}
    SWAPS=${SAGE_BENCH_SWAPS:-2}
    SWAP_LEAD=2 SWAP_GAP=3      # seconds of load before the first swap, between swaps
else
    REPS=${SAGE_BENCH_REPS:-3}
    SECONDS_C16=${SAGE_BENCH_SECONDS:-5}
    SWAPS=${SAGE_BENCH_SWAPS:-5}
    SWAP_LEAD=4 SWAP_GAP=4
fi
SWAP_RATE=${SAGE_BENCH_SWAP_RATE:-1000}
SWAP_CONNS=8
corpus=${1:-$repo/build/debian-docs}
queries=$repo/datasets/debian-docs/queries.txt
indexer=$BUILD/sage-indexer
searchd=$BUILD/sage-searchd
sbench=$BUILD/bench/search_bench
nbench=$BUILD/bench/net_bench
helper=$here/search-bench.py
PY=/usr/bin/python3     # Debian's, where python3-xapian lives
cache=$BUILD/bench/search
out_json=$BUILD/bench/search-bench.json
figs=$BUILD/bench/figures/search-bench.json
fig() { "$PY" "$here/fig.py" "$@"; }
rm -f "$figs"

die() { echo "search-bench: $*" >&2; exit 1; }
say() { echo "search-bench: $*" >&2; }
for v in REPS SECONDS_C16 SWAPS SWAP_RATE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
for t in "$indexer" "$searchd" "$sbench" "$nbench"; do
    [[ -x $t ]] || die "'$t' not found (make bench builds it, or set SAGE_BUILD)"
done

# shellcheck source=scripts/bench/common.sh
. "$here/common.sh"
bench_need search-bench python3-xapian sphinxsearch wrk jq curl || exit 1
"$PY" -c 'import xapian' || die "$PY cannot import xapian"

if [[ ! -f $corpus/MANIFEST.tsv ]]; then
    [[ $# -eq 0 ]] || die "'$corpus' has no MANIFEST.tsv"
    "$repo/datasets/debian-docs/build.sh" "$corpus" >&2
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sage-sbench.XXXXXX")
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
# Appends JSON line(s) on stdin to the results, with the fields of $1 added.
keep() { jq -c --argjson add "$1" '. + $add' | tee -a "$results" >&2; }

# ---- the machine and the tools ----
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
cores=$(grep -c '^processor' /proc/cpuinfo)
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
echo "== run"
echo "SAGE_BUILD=$BUILD SAGE_BENCH_REPS=$REPS SAGE_BENCH_SECONDS=$SECONDS_C16 SAGE_BENCH_SWAPS=$SWAPS" \
     "SAGE_BENCH_SWAP_RATE=$SWAP_RATE bash scripts/bench/search-bench.sh $*; $(date -u +%FT%TZ)"
echo "== machine"
echo "cpu:     $cpu"
echo "cores:   $cores (nproc $(nproc)); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "memory:  $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "kernel:  $(uname -r)"
echo "== tools"
echo "$("$indexer" --version) (git $rev); civetweb $(ver libcivetweb1), zstd $(ver libzstd1)"
echo "xapian:  python3-xapian $(ver python3-xapian), libxapian30 $(ver libxapian30), python3 $(ver python3)"
echo "sphinx:  sphinxsearch $(ver sphinxsearch)"
echo "wrk:     $(ver wrk)"
fig title "$figs" "Search: in process and over the network"
fig meta "$figs" command "SAGE_BUILD=$BUILD QUICK=$QUICK SAGE_BENCH_REPS=$REPS SAGE_BENCH_SECONDS=$SECONDS_C16 SAGE_BENCH_SWAPS=$SWAPS SAGE_BENCH_SWAP_RATE=$SWAP_RATE bash scripts/bench/search-bench.sh $*"
fig meta "$figs" versions "$("$indexer" --version) (git $rev); python3-xapian $(ver python3-xapian), libxapian30 $(ver libxapian30); sphinxsearch $(ver sphinxsearch); wrk $(ver wrk); civetweb $(ver libcivetweb1)"
fig meta "$figs" settings "$REPS rounds (in process: 3 passes each), ${SECONDS_C16} s per 16-client run, $SWAPS swaps under $SWAP_RATE req/s from $SWAP_CONNS connections"

# ---- the indexes: SAGE's, the chunk dump, Xapian's and Sphinx's ----
mkdir -p "$cache"
sage_ix=$cache/docs.sage
if [[ ! -s $sage_ix || $indexer -nt $sage_ix || $corpus/MANIFEST.tsv -nt $sage_ix ]]; then
    say "building the SAGE index of $corpus"
    t0=$EPOCHREALTIME
    "$indexer" build -q --exclude MANIFEST.tsv --out "$sage_ix" "$corpus" >&2
    say "sage-indexer build: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
fi
sha=$(cut -d' ' -f1 "$sage_ix.sha256")
if [[ $(cat "$cache/stamp" 2>/dev/null) != "$sha" ]]; then
    rm -rf "$cache/stamp" "$cache/chunks.jsonl" "$cache/chunks.tsv" "$cache/xapian" "$cache/sphinx"
    say "dumping the chunks"
    "$sbench" dump "$sage_ix" >"$cache/chunks.jsonl"
    "$sbench" stopwords >"$cache/stopwords.txt"
    say "indexing them with Xapian"
    t0=$EPOCHREALTIME
    "$PY" "$helper" xapian-index "$cache/chunks.jsonl" "$cache/stopwords.txt" "$cache/xapian" >&2
    say "xapian index: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
    "$PY" "$helper" sphinx-tsv "$cache/chunks.jsonl" "$cache/chunks.tsv"
fi
n_chunks=$(wc -l <"$cache/chunks.jsonl")

# Sphinx: tsvpipe source, English stemmer, SAGE's stop words, letters and
# digits as word characters (SAGE's tokenizer splits on everything else),
# field lengths kept for bm25a(). The config names the listening port, so it
# is written for each run. Sphinx's default listen backlog (5) drops some of 16
# connections opened at once; the client, waiting for the server's greeting,
# would hang on them. The indexer writes into the cache (sphinx.conf); searchd
# serves a copy in the scratch directory (serve.conf), which the hot-swap
# rotations rename.
sph_port=$(bench_free_port)
mkdir -p "$cache/sphinx" "$scratch/sphinx"
sphinx_conf() {
    cat <<EOF
source chunks
{
    type = tsvpipe
    tsvpipe_command = cat $cache/chunks.tsv
    tsvpipe_field = text
}
index chunks
{
    source = chunks
    path = $1
    docinfo = extern
    morphology = stem_en
    stopwords = $cache/stopwords.txt
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
    listen = 127.0.0.1:$sph_port:mysql41
    listen_backlog = 128
    log = $scratch/sphinx/searchd.log
    pid_file = $scratch/sphinx/searchd.pid
    binlog_path =
    workers = threads
}
EOF
}
sphinx_conf "$cache/sphinx/chunks" >"$scratch/sphinx/sphinx.conf"
sphinx_conf "$scratch/sphinx/live/chunks" >"$scratch/sphinx/serve.conf"
if [[ ! -s $cache/sphinx/chunks.sph ]]; then
    say "indexing them with Sphinx"
    t0=$EPOCHREALTIME
    indexer --config "$scratch/sphinx/sphinx.conf" --quiet chunks >&2 || die "sphinx indexer failed"
    say "sphinx index: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
fi
echo "$sha" >"$cache/stamp"
echo "== corpus"
echo "$corpus: $(wc -l <"$corpus/MANIFEST.tsv") files; index $sage_ix $(du -m "$sage_ix" | cut -f1) MB," \
     "$n_chunks chunks; $(grep -c . "$queries") queries ($queries)"
fig meta "$figs" corpus "$corpus: $(wc -l <"$corpus/MANIFEST.tsv") files; SAGE index $(du -m "$sage_ix" | cut -f1) MB, $n_chunks chunks; $(grep -c . "$queries") queries"
# Warm the page cache: every engine's files are read before they are timed.
cat "$sage_ix" "$cache"/xapian/* "$cache"/sphinx/* >/dev/null

# ---- 1. in process ----
say "in process: $REPS rounds of 3 passes per engine and mode"
for ((r = 0; r < REPS; r++)); do
    for mode in and or; do
        hits_s=() hits_x=()
        if ((r == 0)); then
            hits_s=("$scratch/sage-$mode.hits")
            hits_x=("$scratch/xapian-$mode.hits")
        fi
        "$sbench" run "$sage_ix" "$queries" "$mode" 3 "${hits_s[@]}" |
            keep '{"kind":"inproc"}'
        "$PY" "$helper" xapian-run "$cache/xapian" "$cache/stopwords.txt" "$queries" "$mode" 3 \
            "${hits_x[@]}" | keep '{"kind":"inproc"}'
    done
done

# ---- the servers ----
mkdir -p "$scratch/idx"
cp "$sage_ix" "$scratch/a.sage"
cp "$sage_ix" "$scratch/b.sage"     # the same index in another file, for the swaps
ln -s "$scratch/a.sage" "$scratch/idx/docs"
"$searchd" --index-dir "$scratch/idx" --listen 127.0.0.1:0 --port-file "$scratch/sage.port" \
    </dev/null >"$scratch/sage.out" 2>"$scratch/sage.log" &
sage_pid=$!
pids+=("$sage_pid")
# Sphinx serves set a (hard links in live/); set b is another copy, for the
# rotations.
mkdir -p "$scratch/sphinx/a" "$scratch/sphinx/b" "$scratch/sphinx/live"
cp "$cache"/sphinx/chunks.* "$scratch/sphinx/a/"
cp "$cache"/sphinx/chunks.* "$scratch/sphinx/b/"
rm -f "$scratch/sphinx/a/chunks.spl" "$scratch/sphinx/b/chunks.spl"
ln "$scratch"/sphinx/a/chunks.* "$scratch/sphinx/live/"
searchd --config "$scratch/sphinx/serve.conf" --nodetach </dev/null >"$scratch/sphinx/out" 2>&1 &
pids+=("$!")
sph_pid=$!

sage_up() { [[ -s $scratch/sage.port ]] && curl -sf -o /dev/null "http://127.0.0.1:$(cat "$scratch/sage.port")/readyz"; }
sph_up() { (exec 3<>"/dev/tcp/127.0.0.1/$sph_port") 2>/dev/null; }
for ((i = 0; i < 600; i++)); do
    sage_up && sph_up && break
    kill -0 "$sage_pid" 2>/dev/null || { cat "$scratch/sage.log" >&2; die "sage-searchd exited"; }
    kill -0 "$sph_pid" 2>/dev/null || { cat "$scratch/sphinx/out" >&2; die "sphinx searchd exited"; }
    sleep 0.1
done
sage_up || die "sage-searchd is not ready after 60 s"
sph_up || die "sphinx searchd does not listen after 60 s"
sage_port=$(cat "$scratch/sage.port")
sage_url=http://127.0.0.1:$sage_port
say "sage-searchd on $sage_url (pid $sage_pid), sphinx searchd on 127.0.0.1:$sph_port (pid $sph_pid)"

# CPU time (utime + stime, in clock ticks) of process $1 so far.
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Runs "$@" (a client printing one JSON summary), keeps its line with the
# fields of $2 and server $1's CPU milliseconds per request added.
measure() {
    local pid=$1 add=$2 t0 t1
    shift 2
    t0=$(ticks "$pid")
    "$@" >"$scratch/measure.json" || say "'$*' reported errors"
    t1=$(ticks "$pid")
    jq -c --argjson add "$add" --argjson t "$((t1 - t0))" --argjson hz "$hz" \
        '. + $add + {server_cpu_ms: (if .requests > 0 then $t * 1000 / $hz / .requests else null end)}' \
        "$scratch/measure.json" | tee -a "$results" >&2
}
sage_net() { "$nbench" http --port "$sage_port" --queries "$queries" "$@"; }
sph_net() { "$nbench" sphinxql --port "$sph_port" --queries "$queries" "$@"; }

# ---- 2. one client, then 16 ----
say "one client: a warm-up pass, then $REPS rounds"
for mode in and or; do
    sage_net --mode "$mode" --hits "$scratch/net-sage-$mode.hits" >/dev/null
    sph_net --mode "$mode" --hits "$scratch/net-sphinx-$mode.hits" >/dev/null
done
for ((r = 0; r < REPS; r++)); do
    for mode in and or; do
        measure "$sage_pid" '{"kind":"net","engine":"sage","test":"single"}' \
            sage_net --mode "$mode" --passes 2
        measure "$sph_pid" '{"kind":"net","engine":"sphinx","test":"single"}' \
            sph_net --mode "$mode" --passes 2
        measure "$sph_pid" '{"kind":"net","engine":"sphinx","test":"single-bm25"}' \
            sph_net --mode "$mode" --ranker bm25
        measure "$sage_pid" '{"kind":"net","engine":"sage","test":"single-snippets"}' \
            sage_net --mode "$mode" --snippets
    done
done

# wrk: the same requests net_bench sends, rotated, each of its 2 threads from
# its own start; done() prints a JSON summary.
"$PY" - "$queries" "$scratch" <<'EOF'
import sys, urllib.parse
qs = [l.strip() for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
for mode in ("and", "or"):
    with open(f"{sys.argv[2]}/wrk-{mode}.lua", "w", encoding="utf-8") as f:
        f.write("local paths = {\n")
        for q in qs:
            words = " ".join(("+" + w if mode == "and" else w) for w in q.split())
            f.write('  "/v1/search?q=%s&k=10&snippets=0",\n' % urllib.parse.quote(words, safe=""))
        f.write("""}
local n, counter = #paths, 0
local i = 0
setup = function(thread) thread:set("first", counter * 250); counter = counter + 1 end
init = function(args) i = first or 0 end
request = function() i = i % n + 1; return wrk.format("GET", paths[i]) end
done = function(s, latency, requests)
  local e = s.errors
  io.write(string.format('{"requests":%d,"seconds":%.3f,"qps":%.1f,"p50_ms":%.3f,' ..
    '"p99_ms":%.3f,"max_ms":%.3f,"errors":%d}\\n', s.requests, s.duration / 1e6,
    s.requests / (s.duration / 1e6), latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, e.connect + e.read + e.write + e.status + e.timeout))
end
""")
EOF
say "16 clients: $REPS rounds of ${SECONDS_C16} s per server and mode"
wrk_run() {
    wrk -t2 -c16 -d"${SECONDS_C16}s" -s "$scratch/wrk-$1.lua" "$sage_url" >"$scratch/wrk.out" ||
        die "wrk failed"
    grep '^{' "$scratch/wrk.out" | jq -c --arg m "$1" '. + {mode: $m, conns: 16}'
}
for ((r = 0; r < REPS; r++)); do
    for mode in and or; do
        measure "$sage_pid" '{"kind":"net","engine":"sage","test":"c16"}' \
            sage_net --mode "$mode" --conns 16 --seconds "$SECONDS_C16"
        measure "$sph_pid" '{"kind":"net","engine":"sphinx","test":"c16"}' \
            sph_net --mode "$mode" --conns 16 --seconds "$SECONDS_C16"
        measure "$sage_pid" '{"kind":"wrk","engine":"sage","test":"wrk"}' wrk_run "$mode"
    done
done

# ---- 3. hot swap ----
# Paced AND queries (Sphinx cannot answer 1000 OR queries a second on these
# cores) from SWAP_CONNS connections; after SWAP_LEAD s of it, SWAPS swaps
# SWAP_GAP s apart, each to the other copy of the index, done the same bare
# way for both servers, each done when the server's log says it serves the
# new copy (read every 10 ms, no process started): for sage-searchd a new symlink renamed over
# the docs one (what scripts/swap does, without its checks and curl calls,
# whose processes would load the same two cores); for Sphinx the other copy
# linked in as chunks.new.* and SIGHUP (seamless rotation).
swap_secs=$((SWAP_LEAD + SWAPS * SWAP_GAP + 3))
bench_nap_open "$scratch"
# Opens log $1 on fd 8 and reads it to its end; log_says then waits (30 s at
# most) for a new line holding $2, reading and napping in bash alone, so the
# wait starts no process inside the measured window.
log_mark() {
    exec 8<"$1"
    while read -r -u 8 _; do :; done
}
log_says() {
    local i line
    for ((i = 0; i < 3000; i++)); do
        while read -r -u 8 line; do
            [[ $line == *"$1"* ]] && { exec 8<&-; return 0; }
        done
        bench_nap 0.01
    done
    exec 8<&-
    echo "'$1' not logged in 30 s" >"$scratch/swap.err"
    return 1
}
sage_swap() {
    local target=$scratch/a.sage
    (($1 % 2)) && target=$scratch/b.sage
    log_mark "$scratch/sage.log"
    ln -s "$target" "$scratch/idx/.docs.new"
    mv -T "$scratch/idx/.docs.new" "$scratch/idx/docs"
    log_says "serving index 'docs' generation"
}
sphinx_swap() {
    local set=a f
    (($1 % 2)) && set=b
    log_mark "$scratch/sphinx/searchd.log"
    for f in "$scratch/sphinx/$set"/chunks.*; do
        ln -f "$f" "$scratch/sphinx/live/chunks.new.${f##*.}"
    done
    kill -HUP "$sph_pid"
    log_says "rotating index: all indexes done"
}
for engine in sage sphinx; do
    say "hot swap, $engine: $SWAPS swaps under $SWAP_RATE AND requests a second (${swap_secs} s)"
    port=$sage_port proto=http
    [[ $engine == sphinx ]] && port=$sph_port proto=sphinxql
    "$nbench" "$proto" --port "$port" --queries "$queries" --mode and --conns "$SWAP_CONNS" \
        --rate "$SWAP_RATE" --seconds "$swap_secs" --timeline "$scratch/swap.timeline" \
        >"$scratch/swap.load" &
    load_pid=$!
    pids+=("$load_pid")
    sleep "$SWAP_LEAD"
    : >"$scratch/swaps"
    for ((s = 1; s <= SWAPS; s++)); do
        t0=$EPOCHREALTIME
        st=0
        "${engine}_swap" "$s" || st=$?
        echo "$s $t0 $EPOCHREALTIME $st" >>"$scratch/swaps"
        ((st == 0)) || { cat "$scratch/swap.err" >&2; say "$engine swap $s failed"; }
        sleep $((SWAP_GAP - 1))
    done
    wait "$load_pid" || say "the load client reported errors ($engine)"
    jq -c --arg e "$engine" '. + {"kind":"load","engine":$e,"test":"swap"}' "$scratch/swap.load" |
        tee -a "$results" >&2
    "$PY" "$helper" swap-windows "$scratch/swap.timeline" "$scratch/swaps" "$results" "$SWAP_RATE" \
        "$SWAP_CONNS" "$engine"
    # kept for a closer look: START_EPOCH_S LATENCY_MS per request; N RENAME_S SERVED_S STATUS per swap
    cp "$scratch/swap.timeline" "${out_json%.json}-swap-timeline-$engine.txt"
    cp "$scratch/swaps" "${out_json%.json}-swaps-$engine.txt"
done

# ---- report ----
ov() { "$PY" "$helper" overlap "$1" "$2"; }
jq -nc --arg cpu "$cpu" --argjson cores "$cores" --arg kernel "$(uname -r)" \
    --arg sage "$("$indexer" --version) git $rev" --arg xapian "$(ver python3-xapian)" \
    --arg sphinx "$(ver sphinxsearch)" --arg wrk "$(ver wrk)" --arg civetweb "$(ver libcivetweb1)" \
    --arg corpus "$corpus" --argjson chunks "$n_chunks" --arg queries "$queries" \
    --argjson reps "$REPS" --argjson secs "$SECONDS_C16" \
    --argjson oia "$(ov "$scratch/sage-and.hits" "$scratch/xapian-and.hits")" \
    --argjson oio "$(ov "$scratch/sage-or.hits" "$scratch/xapian-or.hits")" \
    --argjson ona "$(ov "$scratch/net-sage-and.hits" "$scratch/net-sphinx-and.hits")" \
    --argjson ono "$(ov "$scratch/net-sage-or.hits" "$scratch/net-sphinx-or.hits")" \
    '{kind: "meta", machine: {cpu: $cpu, cores: $cores, kernel: $kernel},
      versions: {sage: $sage, "python3-xapian": $xapian, sphinxsearch: $sphinx, wrk: $wrk,
                 civetweb: $civetweb},
      corpus: {path: $corpus, chunks: $chunks, queries: $queries},
      commands: {reps: $reps, seconds_16_clients: $secs,
                 inproc: "search_bench run INDEX QUERIES MODE 3 | search-bench.py xapian-run DB STOPWORDS QUERIES MODE 3",
                 single: "net_bench http|sphinxql --mode MODE --passes 2 (sphinx ranker expr(bm25a(1.2,0.75)), max_matches=10)",
                 c16: "net_bench http|sphinxql --mode MODE --conns 16 --seconds S; wrk -t2 -c16 -dS -s wrk-MODE.lua",
                 swap: "net_bench http|sphinxql --mode and --conns 8 --rate R --timeline; ln -s FILE .docs.new, mv -T .docs.new docs | ln chunks.new.*, kill -HUP"},
      overlap: {inproc_and: $oia, inproc_or: $oio, net_and: $ona, net_or: $ono}}' >>"$results"
echo
"$PY" "$helper" report "$results" "$out_json" "$figs"
echo
echo "(JSON: $out_json)"
