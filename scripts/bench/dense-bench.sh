#!/usr/bin/env bash
# Exact dense search: libsage's sage_dense_exact (int8 scan, f32 rescoring of
# 4 × 10 candidates) against numpy + OpenBLAS (X @ q, argpartition, sort of
# the top) and FAISS IndexFlatIP, one query per call, top 10, on synthetic
# clustered unit vectors (dense_bench gen, fixed seeds): N = 100k and 1M rows of
# d = 384 and 768. Also this machine's memory read bandwidth, measured in the
# same run, and what the scan's int8 bytes per second are of it. Figures are
# printed, not enforced (a shared machine makes pass/fail flaky), and written
# as JSON lines to $SAGE_BUILD/bench/dense-bench.json.
#
#   QUICK=1 scripts/bench/dense-bench.sh     only N = 100k, d = 384, 300 queries
#                                            (peers 50), a 512 MiB bandwidth buffer,
#                                            no per-ISA runs
# The figures are also recorded through fig.py in
# $SAGE_BUILD/bench/figures/dense-bench.json, and each engine's exact-search
# point (q/s, recall@10) as a JSON line in $SAGE_BUILD/bench/dense-points.jsonl
# (the plot of q/s against recall, next to hnsw-bench's per-ef points).
#
# SAGE_BUILD (default build) holds build/bench/dense_bench (make bench builds
# it). SAGE_BENCH_REPS (default 2) timed passes over the queries, best kept.
# Data sets are generated once into $SAGE_BUILD/bench/dense/ (base.f32 is N × d
# float32, row-major: numpy.fromfile reads it); the 1M × 768 one takes 3 GB.
# Peers run under /usr/bin/python3 (Debian's numpy and FAISS), with as many
# BLAS / OpenMP threads as SAGE's scan has.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=${SAGE_BUILD:-$repo/build}
REPS=${SAGE_BENCH_REPS:-2}
PY=/usr/bin/python3
bench=$BUILD/bench/dense_bench
data=$BUILD/bench/dense
out=$BUILD/bench/dense-bench.json
figs=$BUILD/bench/figures/dense-bench.json
points=$BUILD/bench/dense-points.jsonl
QUICK=${QUICK:-0}
rm -f "$figs"
mkdir -p "$BUILD/bench"
: >"$points"

die() { echo "dense-bench: $*" >&2; exit 1; }
[[ -x $bench ]] || die "'$bench' not found (make bench builds it, or set SAGE_BUILD)"
"$PY" -c 'import numpy, faiss' 2>/dev/null || die "$PY lacks numpy or faiss (scripts/install-deps.sh)"

# N DIM QUERIES PEER_QUERIES: SAGE answers every query; the peers, slower by
# far, the first PEER_QUERIES of them.
configs=("100000 384 1000 200")
membw_mib=2048
if [[ $QUICK == 1 ]]; then
    configs=("100000 384 300 50")
    membw_mib=512
else
    configs+=("100000 768 1000 200" "1000000 384 200 30" "1000000 768 100 20")
fi

threads=$(nproc)
(( threads > 4 )) && threads=4
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

mkdir -p "$data"
: > "$out"
echo "dense_bench $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'), $threads threads," \
     "numpy $("$PY" -c 'import numpy; print(numpy.__version__)')," \
     "faiss $("$PY" -c 'import faiss; print(faiss.__version__)'), SAGE_BENCH_REPS=$REPS"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"

# Memory read bandwidth: a 2 GiB buffer (QUICK: 512 MiB), far beyond the caches.
"$bench" membw "$membw_mib" "$threads" 6 | tee -a "$out"
"$bench" membw "$membw_mib" 1 4 | tee -a "$out"
"$bench" spawn 2000 | tee -a "$out"

for c in "${configs[@]}"; do
    read -r n dim nq pnq <<< "$c"
    d=$data/$n-$dim
    if [[ ! -s $d/truth.u32 ]]; then
        mkdir -p "$d"
        echo "generating $n × $dim ..."
        # as many queries as the full run asks, so that QUICK's set serves it too
        "$bench" gen "$d" "$n" "$dim" $((nq < 1000 && n == 100000 ? 1000 : nq)) $((n + dim)) >/dev/null
    fi
    "$bench" run "$d" "$n" "$dim" "$nq" 1 "$REPS" | tee -a "$out"
    "$bench" run "$d" "$n" "$dim" "$nq" 0 "$REPS" | tee -a "$out"
    "$PY" "$here/dense-bench.py" "$d" "$n" "$dim" "$pnq" 1 | tee -a "$out"
    if [[ $c == "${configs[0]}" && $QUICK == 0 ]]; then
        # the int8 kernels this CPU has, one thread each (C on fewer queries)
        for isa in $("$bench" isas); do
            "$bench" run "$d" "$n" "$dim" "$([[ $isa == c ]] && echo 100 || echo "$nq")" 1 "$REPS" \
                "$isa" | sed 's/"engine": "sage"/"engine": "sage-isa"/' | tee -a "$out"
        done
    fi
done

echo
"$PY" "$here/fig.py" meta "$figs" command "SAGE_BUILD=$BUILD QUICK=$QUICK SAGE_BENCH_REPS=$REPS bash scripts/bench/dense-bench.sh"
"$PY" - "$out" "$here" "$figs" "$points" "$threads" "$REPS" "$QUICK" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sys.path.insert(0, sys.argv[2])
import fig
figs, points, threads, reps, quick = sys.argv[3:8]
bw = max(r["membw_gbs"] for r in rows if "membw_gbs" in r)   # 1 or all threads
spawn = next(r["spawn_us"] for r in rows if "spawn_us" in r)
print(f"memory read bandwidth {bw:.1f} GB/s; a pthread_create + join costs {spawn:.1f} us")
print(f"{'N':>8} {'d':>4} | {'sage 1t':>8} {'sage':>8} {'numpy':>8} {'faiss':>8} | "
      f"{'sage/np':>7} {'sage/faiss':>10} | {'recall':>6} | {'scan GB/s':>9} {'of membw':>8} | "
      f"{'ms/q':>6} {'CPU ms/q':>8}")
for key in sorted({(r["n"], r["dim"]) for r in rows if "engine" in r}):
    e = {}
    for r in rows:
        if "engine" in r and (r["n"], r["dim"]) == key:
            name = r["engine"] + ("1" if r.get("threads") == 1 else "")
            if r["engine"] == "sage-isa":
                continue
            e[name] = r
    s, s1, npy, fa = e["sage"], e["sage1"], e["numpy"], e["faiss"]
    print(f"{key[0]:>8} {key[1]:>4} | {s1['qps']:>8.1f} {s['qps']:>8.1f} {npy['qps']:>8.1f} "
          f"{fa['qps']:>8.1f} | {s['qps'] / npy['qps']:>6.1f}x {s['qps'] / fa['qps']:>9.1f}x | "
          f"{s['recall']:>6.4f} | {s['scan_gbs']:>9.1f} {100 * s['scan_gbs'] / bw:>7.0f}% | "
          f"{s['ms']:>6.2f} {s['cpu_ms']:>8.2f}")
isa = [r for r in rows if r.get("engine") == "sage-isa"]
if isa:
    print("int8 kernels, one thread, %d x %d: " % (isa[0]["n"], isa[0]["dim"]) +
          ", ".join(f"{r['isa']} {r['qps']:.0f} q/s ({r['cpu_ms']:.2f} CPU ms/q)" for r in isa))
fig.main(["fig.py", "title", figs, "Dense search, exact"])
import numpy, faiss
fig.main(["fig.py", "meta", figs, "versions", "numpy %s, faiss %s (Debian's /usr/bin/python3)"
          % (numpy.__version__, faiss.__version__)])
fig.main(["fig.py", "meta", figs, "settings",
          "%s threads for SAGE's scan, BLAS and OpenMP; best of %s passes; synthetic clustered unit "
          "vectors (dense_bench gen); memory read bandwidth %.1f GB/s, pthread_create + join %.1f us"
          % (threads, reps, bw, spawn)])
fig.main(["fig.py", "note", figs, "sets that fit in the last-level cache (the 100k ones) can scan "
          "faster than the memory bandwidth"])
with open(points, "a") as pf:
    for key in sorted({(r["n"], r["dim"]) for r in rows if "engine" in r}):
        n, dim = key
        on = "N = %d, d = %d, top 10, one query per call" % key
        tag = "%dx%d" % key
        for r in rows:
            if "engine" not in r or (r["n"], r["dim"]) != key or r["engine"] == "sage-isa":
                continue
            one = r["engine"] == "sage" and r.get("threads") == 1
            fig.add(figs, ["dense-qps-" + tag + ("-1thread" if one else ""), r["engine"],
                           repr(r["qps"]), "--unit", "q/s", "--better", "higher", "--what",
                           "exact dense search throughput, %s, %s%s" % (
                               on, "1 thread" if one else "%s threads" % threads,
                               "" if one else " (SAGE int8 scan + f32 rescoring, numpy X @ q, "
                               "FAISS IndexFlatIP)")])
            if one:
                continue
            fig.add(figs, ["dense-recall10-" + tag, r["engine"], repr(r["recall"]), "--unit",
                           "recall@10", "--better", "higher", "--what",
                           "recall@10 against the exact f32 top 10, " + on])
            pf.write(json.dumps({"engine": r["engine"], "n": n, "dim": dim, "qps": r["qps"],
                                 "recall": r["recall"]}) + "\n")
            if r["engine"] == "sage":
                fig.add(figs, ["dense-scan-gbs-" + tag, "sage", repr(r["scan_gbs"]), "--unit",
                               "GB/s", "--better", "higher", "--what",
                               "int8 row bytes scanned a second, " + on])
                fig.add(figs, ["dense-membw-fraction-" + tag, "sage", repr(r["scan_gbs"] / bw),
                               "--unit", "fraction", "--better", "higher", "--what",
                               "scan GB/s as a fraction of the memory read bandwidth measured in "
                               "the same run (%.1f GB/s), %s" % (bw, on)])
print("q/s: queries a second, one query per call; recall: SAGE's top 10 against the exact f32 "
      "top 10 (numpy's and FAISS's are in the JSON); scan GB/s: int8 row bytes read a second "
      "(sets that fit in the last-level cache can exceed the memory bandwidth); ms/q and CPU ms/q: "
      "SAGE's wall time and CPU time (all its threads) a query: CPU time near the wall time "
      "with 2 threads means the second core was busy elsewhere")
EOF
