#!/bin/bash
# Memory of the index builder as the input grows: sage-indexer build of a
# generated JSONL collection ({"id","title","text"} a line, a Zipf vocabulary)
# at two sizes, each with every --memory-limit of LIMITS (0: none), printing
# peak RSS (/usr/bin/time -v), CPU and wall time, and checking that every
# build of one input has the same sha256; then the same for the index
# builder alone (ixbuild_bench: the same kind of chunks made in-process, fed
# to sage_ixbuild, no documents or chunk text kept), where the limit bounds
# the whole process. Figures are printed, not enforced.
#
#   scripts/bench/spill-bench.sh [DOCS...]   default: 300000 1200000
# LIMITS (default "256M 0") are the --memory-limit values; VOCAB
# (default 500000) the vocabulary; SAGE_BUILD (default build) holds
# sage-indexer and bench/ixbuild_bench (make build/bench/ixbuild_bench);
# scratch goes under ${TMPDIR:-/tmp} and is removed at exit.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
indexer=${SAGE_BUILD:-$repo/build}/sage-indexer
builder=${SAGE_BUILD:-$repo/build}/bench/ixbuild_bench
LIMITS=${LIMITS:-256M 0}
VOCAB=${VOCAB:-500000}
sizes=("$@")
((${#sizes[@]})) || sizes=(300000 1200000)
for tool in "$indexer" "$builder"; do
    [[ -x $tool ]] || { echo "spill-bench: '$tool' not found" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "spill-bench: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sage-spill.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 1' HUP INT TERM     # through the EXIT trap

# gen N FILE: N documents of 20 to 120 words; word rank r is drawn with
# probability 1/r over VOCAB made-up words (letters of r in base 26).
gen() {
    python3 - "$1" "$VOCAB" > "$2" <<'PY'
import bisect, itertools, random, sys
n, vocab = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(1)
cum = list(itertools.accumulate(1.0 / r for r in range(1, vocab + 1)))
def word(r):
    s = ""
    while True:
        s += chr(97 + r % 26)
        r //= 26
        if r == 0:
            return s + "q"
out = sys.stdout
words = [word(r) for r in range(vocab)]
total = cum[-1]
for i in range(n):
    k = rng.randint(20, 120)
    ws = [words[bisect.bisect_left(cum, rng.random() * total)] for _ in range(k)]
    out.write('{"id":"d%d","title":"%s","text":"%s"}\n' % (i, " ".join(ws[:4]), " ".join(ws)))
PY
}

printf '%-9s %-8s %-6s %9s %6s %7s  %s\n' docs chunks limit peak_MiB cpu_s wall_s sha256
for n in "${sizes[@]}"; do
    gen "$n" "$scratch/docs-$n.jsonl"
    first=
    for limit in $LIMITS; do
        out=$scratch/x-$n-$limit.sage
        /usr/bin/time -v "$indexer" build -q --memory-limit "$limit" --max-file-size 64G --out "$out" \
            "$scratch/docs-$n.jsonl" 2> "$scratch/time" || { cat "$scratch/time" >&2; exit 1; }
        rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$scratch/time")
        cpu=$(awk -F': ' '/(User|System) time/ { s += $2 } END { print s }' "$scratch/time")
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0;
                   for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$scratch/time")
        sha=$(cut -d' ' -f1 "$out.sha256")
        chunks=$("$indexer" info --json "$out" | jq .build.counts.chunks)
        printf '%-9s %-8s %-6s %9s %6s %7s  %s\n' "$n" "$chunks" "$limit" "$rss" "$cpu" "$wall" "${sha:0:16}"
        [[ -z $first || $first == "$sha" ]] || { echo "spill-bench: sha256 differs" >&2; exit 1; }
        first=$sha
        rm -f "$out" "$out.sha256"
    done
    rm -f "$scratch/docs-$n.jsonl"
done

echo
echo "index builder alone"
printf '%-9s %-6s %9s %6s %7s  %s\n' chunks limit peak_MiB cpu_s wall_s "bytes sha256"
for n in "${sizes[@]}"; do
    first=
    for limit in $LIMITS; do
        out=$scratch/b-$n-$limit.sage
        read -r _ _ rss cpu wall size < <("$builder" "$n" "$(numfmt --from=iec "$limit")" \
                                         "$scratch" "$out" "$VOCAB")
        sum=$(sha256sum "$out" | cut -c1-16)
        printf '%-9s %-6s %9s %6s %7s  %s %s\n' "$n" "$limit" "$rss" "$cpu" "$wall" "$size" "$sum"
        [[ -z $first || $first == "$sum" ]] || { echo "spill-bench: output differs" >&2; exit 1; }
        first=$sum
        rm -f "$out"
    done
done
