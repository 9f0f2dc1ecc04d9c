#!/usr/bin/env bash
# Approximate dense search: SAGE's HNSW section against hnswlib on the same
# data, in the same run. Synthetic clustered unit vectors (fixed seed) of DIM
# 384 from MODEL (default fitted: local intrinsic dimension fitted to real
# sentence-encoder vectors; shared: the first, harder model; see hnsw_bench.c);
# N = 100k (pass 100000 1000000 for 1M, about an hour more on 2 cores; QUICK=1: 20k). For each N: the build time of both (THREADS threads, M 16,
# ef_construction EFC) and the size of SAGE's HNSW section; then, per search
# ef, single-query q/s on one thread (from the thread's CPU time, best of 3
# passes, as the machine may be shared) and recall@10 against exact f32
# truth; then q/s at equal recall (the smallest ef of each that reaches it).
# hnswlib is queried through knn_query with num_threads=1 on the batch, so
# no Python overhead is charged to it per query. Before each size, the data's
# local intrinsic dimension and relative contrast are printed and noted
# (vector-stats.py). Pass larger EFS at 1M.
#
#   scripts/bench/hnsw-bench.sh [N...]
# DIM, MODEL, NQ (queries, default 1000), EFC (200), THREADS (2), EFS ("16 32 64 128
# 256 512"); SAGE_BUILD holds bench/hnsw_bench (make build/bench/hnsw_bench);
# Debian's /usr/bin/python3 has numpy and hnswlib (apt-get install
# python3-hnswlib); scratch under ${TMPDIR:-/tmp}, removed at exit.
# QUICK=1: N = 20000 and NQ 200 unless given. The figures are recorded through
# fig.py in $SAGE_BUILD/bench/figures/hnsw-bench.json, and the per-ef points
# (q/s, recall@10) of both as JSON lines in $SAGE_BUILD/bench/hnsw-points.jsonl.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=${SAGE_BUILD:-$repo/build}
bench=$BUILD/bench/hnsw_bench
py=/usr/bin/python3
QUICK=${QUICK:-0}
DIM=${DIM:-384}
MODEL=${MODEL:-fitted}
if [[ $QUICK == 1 ]]; then NQ=${NQ:-200}; else NQ=${NQ:-1000}; fi
EFC=${EFC:-200}
THREADS=${THREADS:-2}
EFS=${EFS:-16 32 64 128 256 512}
sizes=("$@")
if ((${#sizes[@]} == 0)); then
    if [[ $QUICK == 1 ]]; then sizes=(20000); else sizes=(100000); fi
fi
figs=$BUILD/bench/figures/hnsw-bench.json
points=$BUILD/bench/hnsw-points.jsonl
rm -f "$figs"
mkdir -p "$BUILD/bench"
: >"$points"
fig() { $py "$here/fig.py" "$@"; }
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
[[ -x $bench ]] || { echo "hnsw-bench: '$bench' not found (make build/bench/hnsw_bench)" >&2; exit 1; }
$py -c 'import numpy, hnswlib' 2>/dev/null ||
    { echo "hnsw-bench: $py lacks numpy or hnswlib (apt-get install python3-hnswlib)" >&2; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sage-hnsw.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 1' HUP INT TERM

# shellcheck disable=SC2086 # EFS is a list of numbers
hnswlib_run() {
    $py - "$scratch" "$DIM" "$THREADS" "$EFC" $EFS <<'PY'
import sys, time
import numpy as np, hnswlib
d, dim, threads, efc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
efs = [int(x) for x in sys.argv[5:]]
base = np.fromfile(d + "/base.f32", dtype=np.float32).reshape(-1, dim)
query = np.fromfile(d + "/query.f32", dtype=np.float32).reshape(-1, dim)
truth = np.fromfile(d + "/truth.u32", dtype=np.uint32).reshape(-1, 10)
p = hnswlib.Index(space="ip", dim=dim)
p.init_index(max_elements=len(base), M=16, ef_construction=efc, random_seed=100)
t0 = time.perf_counter()
p.add_items(base, np.arange(len(base)), num_threads=threads)
print("build_s=%.2f n=%d" % (time.perf_counter() - t0, len(base)), flush=True)
for ef in efs:
    p.set_ef(max(ef, 10))
    best = None
    for rep in range(4):        # a warm-up pass, then the best of 3
        t0 = time.thread_time()
        labels, _ = p.knn_query(query, k=10, num_threads=1)
        dt = time.thread_time() - t0
        if rep and (best is None or dt < best):
            best = dt
    rec = np.mean([len(set(labels[i].tolist()) & set(truth[i].tolist())) / 10
                   for i in range(len(query))])
    print("ef=%d qps=%.1f recall=%.4f" % (ef, len(query) / best, rec), flush=True)
PY
}

table() {
    $py - "$1" "$2" "$3" "$here" "$figs" "$points" "$MODEL" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[4])
import fig
figs, points = sys.argv[5], sys.argv[6]
def parse(path):
    build, rows = {}, {}
    for line in open(path):
        kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
        if "ef" in kv:
            rows[int(kv["ef"])] = (float(kv["qps"]), float(kv["recall"]))
        elif "build_s" in kv:
            build = kv
    return build, rows
sb, s = parse(sys.argv[1])
hb, h = parse(sys.argv[2])
print("N=%s dim=%s: build SAGE %s s (HNSW section %.1f MB, VECTORS %.1f MB), hnswlib %s s, %s threads"
      % (sb["n"], sys.argv[3], sb["build_s"], int(sb["hnsw_bytes"]) / 1e6,
         int(sb["vectors_bytes"]) / 1e6, hb["build_s"], sb["threads"]))
print("%6s %12s %8s %12s %8s %7s" % ("ef", "SAGE q/s", "recall", "hnswlib q/s", "recall", "ratio"))
for ef in sorted(s):
    hq, hr = h.get(ef, (float("nan"), float("nan")))
    print("%6d %12.0f %8.4f %12.0f %8.4f %7.2f" % (ef, s[ef][0], s[ef][1], hq, hr, s[ef][0] / hq))
for target in (0.9, 0.95, 0.99):
    def first(rows):
        ok = [ef for ef in sorted(rows) if rows[ef][1] >= target]
        return (ok[0], rows[ok[0]][0]) if ok else None
    a, b = first(s), first(h)
    if a and b:
        print("recall@10 >= %.2f: SAGE ef %d %.0f q/s, hnswlib ef %d %.0f q/s: SAGE/hnswlib %.2f"
              % (target, a[0], a[1], b[0], b[1], a[1] / b[1]))
    else:
        who = "either" if not a and not b else "SAGE" if not a else "hnswlib"
        print("recall@10 >= %.2f: not reached by %s at these ef (EFS)" % (target, who))
n, dim = int(sb["n"]), int(sys.argv[3])
on = "N = %d, d = %d synthetic clustered unit vectors (%s model), M 16, ef_construction %s" % (
    n, dim, sys.argv[7], sb.get("ef_construction", "?"))
fig.add(figs, ["hnsw-build-s-%d" % n, "sage", sb["build_s"], "--unit", "s", "--better", "lower",
               "--what", "HNSW build time, %s threads, %s" % (sb["threads"], on)])
fig.add(figs, ["hnsw-build-s-%d" % n, "hnswlib", hb["build_s"]])
fig.add(figs, ["hnsw-section-mb-%d" % n, "sage", repr(int(sb["hnsw_bytes"]) / 1e6), "--unit", "MB",
               "--better", "lower", "--what", "size of SAGE's HNSW section (graph), " + on])
with open(points, "a") as pf:
    for ef in sorted(set(s) | set(h)):
        for eng, rows in (("sage", s), ("hnswlib", h)):
            if ef not in rows:
                continue
            qps, rec = rows[ef]
            cond = "ef %d, one thread, top 10, %s" % (ef, on)
            fig.add(figs, ["hnsw-qps-%d-ef%d" % (n, ef), eng, repr(qps), "--unit", "q/s",
                           "--better", "higher", "--what", "HNSW query throughput (CPU time, best "
                           "of 3 passes), " + cond])
            fig.add(figs, ["hnsw-recall10-%d-ef%d" % (n, ef), eng, repr(rec), "--unit", "recall@10",
                           "--better", "higher", "--what", "recall@10 against exact f32, " + cond])
            pf.write(json.dumps({"engine": eng, "n": n, "dim": dim, "ef": ef, "qps": qps,
                                 "recall": rec, "model": sys.argv[7]}) + "\n")
PY
}

fig title "$figs" "Approximate dense search (HNSW)"
fig meta "$figs" command "SAGE_BUILD=$BUILD QUICK=$QUICK DIM=$DIM MODEL=$MODEL NQ=$NQ EFC=$EFC THREADS=$THREADS EFS='$EFS' bash scripts/bench/hnsw-bench.sh ${sizes[*]}"
fig meta "$figs" versions "python3-hnswlib $(ver python3-hnswlib), numpy $($py -c 'import numpy; print(numpy.__version__)')"
fig meta "$figs" settings "N ${sizes[*]}, d $DIM, $MODEL model, $NQ queries, M 16, ef_construction $EFC, $THREADS build threads; search on one thread, q/s from the thread's CPU time, best of 3 passes"
for n in "${sizes[@]}"; do
    echo "== N=$n dim=$DIM queries=$NQ model=$MODEL"
    "$bench" gen "$scratch" "$n" "$NQ" "$DIM" 1 "$MODEL"
    # how hard the data is: local intrinsic dimension and relative contrast
    stats=$($py "$here/vector-stats.py" "$scratch/base.f32" "$DIM")
    echo "$stats"
    fig note "$figs" "N = $n, $MODEL model: $stats (scripts/bench/vector-stats.py; USE-Lite's vectors of SciFact measure lid 26.2, rc 1.434)"
    "$bench" build "$scratch" "$scratch/x.sage" "$DIM" 16 "$EFC" "$THREADS" | tee "$scratch/sage.txt"
    # shellcheck disable=SC2086
    "$bench" search "$scratch" "$scratch/x.sage" $EFS | tee -a "$scratch/sage.txt"
    "$bench" exact "$scratch" "$scratch/x.sage" 100
    rm -f "$scratch/x.sage"
    hnswlib_run | tee "$scratch/hnswlib.txt"
    table "$scratch/sage.txt" "$scratch/hnswlib.txt" "$DIM"
done
