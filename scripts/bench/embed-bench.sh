#!/usr/bin/env bash
# Embedding client throughput against the fake GPU server (tests/lib/fakegpu.py)
# with a fixed added latency per request: inputs per second as a fraction of
# the ideal concurrency x batch / latency (issue #6 asks for >= 90 %).
#   SAGE_BUILD=build bash scripts/bench/embed-bench.sh
# Knobs (environment): LATENCY_MS (50), CONCURRENCY (4), BATCH (32), ROUNDS
# (requests per slot, 40), LEN (bytes per input, 64), DIM (64), PRODUCERS (2).
# The server answers every input with one precomputed vector (--constant) and
# the inputs are short, so its own work stays small next to the latency and
# the figure measures the client. Prints one JSON line, and records the
# figures through fig.py in $SAGE_BUILD/bench/figures/embed-bench.json.
# QUICK=1: ROUNDS 20 unless set (the run takes ROUNDS x LATENCY_MS).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$(dirname "$0")/../.." && pwd)
: "${SAGE_BUILD:=$TOP/build}"
DEF_ROUNDS=40
[ "${QUICK:-0}" = 1 ] && DEF_ROUNDS=20
LATENCY_MS=${LATENCY_MS:-50} CONCURRENCY=${CONCURRENCY:-4} BATCH=${BATCH:-32}
ROUNDS=${ROUNDS:-$DEF_ROUNDS} LEN=${LEN:-64} DIM=${DIM:-64} PRODUCERS=${PRODUCERS:-2}
FIGS=$SAGE_BUILD/bench/figures/embed-bench.json
rm -f "$FIGS"
CLIENT=$SAGE_BUILD/tests/lib/embed_client
[ -x "$CLIENT" ] || { echo "embed-bench: build $CLIENT first (make test-bins)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sage-embed-bench.XXXXXX")
PID=''
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

python3 "$TOP/tests/lib/fakegpu.py" --port-file "$WORK/port" --idle-timeout 120 --dim "$DIM" \
    --max-inputs "$BATCH" --latency-ms "$LATENCY_MS" --constant >"$WORK/fakegpu.out" 2>&1 &
PID=$!
for _ in $(seq 1 500); do
    [ -s "$WORK/port" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/fakegpu.out" >&2; exit 1; }
    sleep 0.02
done
[ -s "$WORK/port" ] || { echo "embed-bench: fakegpu.py did not start" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$WORK/port")"

N=$((CONCURRENCY * BATCH * ROUNDS))
"$CLIENT" --url "$URL" --dim "$DIM" --concurrency "$CONCURRENCY" --batch "$BATCH" \
    --gen "$N" --len "$LEN" --producers "$PRODUCERS" >"$WORK/run.json"
/usr/bin/python3 - "$WORK/run.json" "$N" "$CONCURRENCY" "$BATCH" "$LATENCY_MS" "$HERE" "$FIGS" \
    "$LEN" "$DIM" "$PRODUCERS" "$SAGE_BUILD" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[6])
import fig
r = json.load(open(sys.argv[1]))
n, c, b, lat = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
figs, length, dim, producers = sys.argv[7], sys.argv[8], sys.argv[9], sys.argv[10]
assert r["ok"] and r["inputs"] == n, r
rate = n / (r["elapsed_ms"] / 1000.0)
ideal = c * b / (lat / 1000.0)
print(json.dumps({"bench": "embed-client", "inputs": n, "requests": r["requests"],
                  "concurrency": c, "batch": b, "latency_ms": lat,
                  "elapsed_ms": round(r["elapsed_ms"], 1), "inputs_per_s": round(rate, 1),
                  "ideal_per_s": round(ideal, 1), "fraction": round(rate / ideal, 4)}))
cond = ("fake GPU server with %g ms latency a request, concurrency %d, batch %d, %d inputs of %s "
        "bytes, %s dimensions" % (lat, c, b, n, length, dim))
fig.main(["fig.py", "title", figs, "Remote embedding client"])
fig.main(["fig.py", "meta", figs, "command",
          "SAGE_BUILD=" + sys.argv[11] + " LATENCY_MS=%g CONCURRENCY=%d BATCH=%d ROUNDS=%d LEN=%s DIM=%s PRODUCERS=%s "
          "bash scripts/bench/embed-bench.sh" % (lat, c, b, n // (c * b), length, dim, producers)])
fig.main(["fig.py", "meta", figs, "settings", cond + "; tests/lib/fakegpu.py --constant"])
fig.add(figs, ["embed-inputs-per-s", "sage", repr(rate), "--unit", "inputs/s", "--better", "higher",
               "--what", "embedding client throughput (ideal: concurrency x batch / latency), " + cond])
fig.add(figs, ["embed-inputs-per-s", "ideal", repr(ideal)])
fig.add(figs, ["embed-fraction-of-ideal", "sage", repr(rate / ideal), "--unit", "fraction",
               "--better", "higher", "--what", "embedding client throughput as a fraction of the "
               "ideal (target >= 0.9), " + cond])
PY
