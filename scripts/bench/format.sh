#!/bin/bash
# Index format benchmark (run by `make bench` through run.sh; SAGE_BUILD = the build directory): open time of a
# 1 GiB and a 64 MiB index, and verify throughput against xxhsum -H3 (XXH3-64, our
# checksum) and sha256sum on the same file, page cache warm; scratch under ${TMPDIR:-/tmp},
# removed at exit. Targets: open < 1 ms at any size, verify within 2x of xxhsum. Figures
# are printed, not enforced: a busy machine would make a pass/fail flaky, and recorded
# through fig.py in $SAGE_BUILD/bench/figures/format.json. QUICK=1: a 256 MiB file, 3 runs.
set -euo pipefail
export LC_ALL=C

: "${SAGE_BUILD:?set SAGE_BUILD to the build directory (make bench does)}"
BENCH=$SAGE_BUILD/bench/format_bench
here=$(cd "$(dirname "$0")" && pwd)
if [[ ${QUICK:-0} == 1 ]]; then
    BIG_MB=${SAGE_BENCH_BIG_MB:-256}
    RUNS=${SAGE_BENCH_RUNS:-3}
else
    BIG_MB=${SAGE_BENCH_BIG_MB:-1024}
    RUNS=${SAGE_BENCH_RUNS:-5}
fi
SMALL_MB=${SAGE_BENCH_SMALL_MB:-64}
OPENS=${SAGE_BENCH_OPENS:-1000}
figs=$SAGE_BUILD/bench/figures/format.json
fig() { /usr/bin/python3 "$here/fig.py" "$@"; }
rm -f "$figs"

INDEXER=$SAGE_BUILD/sage-indexer
for tool in "$BENCH" "$INDEXER" xxhsum sha256sum; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' not found" >&2; exit 1; }
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sage-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 1' HUP INT TERM     # through the EXIT trap
free_mb=$(df -Pm "$scratch" | awk 'NR == 2 { print $4 }')
if ((free_mb < BIG_MB + SMALL_MB + 64)); then
    echo "bench: $scratch has $free_mb MiB free; $((BIG_MB + SMALL_MB + 64)) MiB needed" >&2
    exit 1
fi

# Median of the numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
                                        else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Wall seconds of one run of "$@". Its output is discarded (xxhsum draws a
# progress line on stderr) unless it fails.
wall() {
    local t0=$EPOCHREALTIME t1
    if ! "$@" >"$scratch/out" 2>&1; then
        echo "bench: '$*' failed:" >&2
        cat "$scratch/out" >&2
        return 1
    fi
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}

# Median wall seconds of RUNS runs of "$@"; every run's seconds are also left,
# one a line, in $scratch/runs.NAME (NAME = the command's base name).
wall_median() {
    local i times=
    for ((i = 0; i < RUNS; i++)); do
        times+="$(wall "$@")"$'\n' || return 1
    done
    printf '%s' "$times" >"$scratch/runs.${1##*/}"
    printf '%s' "$times" | median
}

# Value of key=VALUE in a format_bench output line.
field() {
    tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

echo "== machine"
echo "cpu:     $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "cores:   $(grep -c '^processor' /proc/cpuinfo) (nproc $(nproc))"
echo "memory:  $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "kernel:  $(uname -r)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; other work skews the figures)"
echo "scratch: $scratch ($(df -hP "$scratch" | awk 'NR == 2 { print $1 ", " $4 " free" }'))"
echo "== packages"
dpkg-query -W -f='${Package} ${Version}\n' libxxhash0 xxhash libzstd1
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
fig title "$figs" "Index format: open and verify"
fig meta "$figs" command "SAGE_BUILD=$SAGE_BUILD QUICK=${QUICK:-0} bash scripts/bench/format.sh"
fig meta "$figs" files "${BIG_MB} MiB and ${SMALL_MB} MiB index files (format_bench make-file), page cache warm"
fig meta "$figs" settings "$OPENS opens per file, $RUNS verify runs per tool"
fig meta "$figs" versions "xxhash $(ver xxhash), coreutils (sha256sum) $(ver coreutils), libzstd1 $(ver libzstd1)"

echo "== files"
big=$scratch/big.sage
small=$scratch/small.sage
t_make_big=$(wall "$BENCH" make-file "$big" "$BIG_MB")
t_make_small=$(wall "$BENCH" make-file "$small" "$SMALL_MB")
echo "make-file (writer, fsync, sidecar): ${BIG_MB} MiB $t_make_big s, ${SMALL_MB} MiB $t_make_small s"
cat "$big" "$small" >/dev/null   # warm the page cache
stat -c '%s %n' "$big" "$small"

echo "== open + validate (no verify), $OPENS opens each"
open_big=$("$BENCH" open "$big" "$OPENS")
open_small=$("$BENCH" open "$small" "$OPENS")
echo "$open_big"
echo "$open_small"

echo "== verify vs xxhsum -H3 vs sha256sum on ${BIG_MB} MiB, median of $RUNS runs"
ver=$("$BENCH" verify "$big" "$RUNS")
echo "$ver"
bytes=$(field bytes "$ver")
t_ver=$(field median_s "$ver")
t_ver_first=$(field first_s "$ver")
# Whole processes, timed alike: the CLI opens, maps and verifies as xxhsum opens and reads.
t_cli=$(wall_median "$INDEXER" verify "$big")
t_xxh=$(wall_median xxhsum -H3 "$big")
t_sha=$(wall_median sha256sum "$big")
t_open_big=$(field median_us "$open_big")
t_open_small=$(field median_us "$open_small")

fig add "$figs" open-us-big sage "$t_open_big" --unit us --better lower \
    --what "open + validate (no verify) of a ${BIG_MB} MiB index, median of $OPENS opens"
fig add "$figs" open-us-small sage "$t_open_small" --unit us --better lower \
    --what "open + validate (no verify) of a ${SMALL_MB} MiB index, median of $OPENS opens"
# one value per run: GB/s of each whole process on the same file
gbs() { awk -v b="$bytes" '{ printf "%.4f\n", b / $1 / 1e9 }' "$scratch/runs.$1"; }
verify_what="verify throughput of a ${BIG_MB} MiB index, whole process (sage-indexer verify: XXH3-64"
verify_what+=" of every section), page cache warm"
mapfile -t v < <(gbs sage-indexer)
fig add "$figs" verify-gbs sage "${v[@]}" --unit GB/s --better higher --what "$verify_what"
mapfile -t v < <(gbs xxhsum)
fig add "$figs" verify-gbs xxhsum "${v[@]}"
mapfile -t v < <(gbs sha256sum)
fig add "$figs" verify-gbs sha256sum "${v[@]}"
fig add "$figs" verify-lib-gbs sage "$(awk -v b="$bytes" -v t="$t_ver" 'BEGIN { printf "%.4f", b / t / 1e9 }')" \
    --unit GB/s --better higher \
    --what "verify throughput of a ${BIG_MB} MiB index in the library (sage_reader_verify, median of $RUNS), page cache warm"
fig note "$figs" "load average at the end $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores: other work skews the figures"

echo "== summary (load now $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v bytes="$bytes" -v v="$t_ver" -v vf="$t_ver_first" -v c="$t_cli" -v x="$t_xxh" \
    -v s="$t_sha" -v ob="$t_open_big" -v os="$t_open_small" -v big="$BIG_MB" \
    -v small="$SMALL_MB" 'BEGIN {
    printf "%-34s %9s %8s %10s %10s\n", "measure", "seconds", "GB/s", "/xxhsum", "/sha256sum"
    row("sage_reader_verify (median)", v)
    row("sage_reader_verify (first run)", vf)
    row("sage-indexer verify (process)", c)
    row("xxhsum -H3 (process)", x)
    row("sha256sum (process)", s)
    printf "open+validate median: %.1f us (%d MiB file), %.1f us (%d MiB file)\n",
           ob, big, os, small
    printf "target open < 1000 us at both sizes: %s\n", (ob < 1000 && os < 1000) ? "met" : "NOT met"
    printf "target verify within 2x of xxhsum: %s (library %.2fx, process %.2fx)\n",
           (v / x <= 2 && c / x <= 2) ? "met" : "NOT met", v / x, c / x
}
function row(name, t) {
    printf "%-34s %9.4f %8.2f %10.2f %10.2f\n", name, t, bytes / t / 1e9, t / x, t / s
}'
