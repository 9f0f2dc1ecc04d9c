#!/usr/bin/env bash
# Embedding client throughput against the fake GPU server (tests/lib/fakegpu.py)
# with a fixed added latency per request: inputs per second as a fraction of
# the ideal concurrency x batch / latency (issue #6 asks for >= 90 %).
#   SAGE_BUILD=build bash scripts/bench/embed-bench.sh
# Knobs (environment): LATENCY_MS (50), CONCURRENCY (4), BATCH (32), ROUNDS
# (requests per slot, 40), LEN (bytes per input, 64), DIM (64), PRODUCERS (2).
# The server answers every input with one precomputed vector (--constant) and
# the inputs are short, so its own work stays small next to the latency and
# the figure measures the client. Prints one JSON line.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
: "${SAGE_BUILD:=$TOP/build}"
LATENCY_MS=${LATENCY_MS:-50} CONCURRENCY=${CONCURRENCY:-4} BATCH=${BATCH:-32}
ROUNDS=${ROUNDS:-40} LEN=${LEN:-64} DIM=${DIM:-64} PRODUCERS=${PRODUCERS:-2}
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
python3 - "$WORK/run.json" "$N" "$CONCURRENCY" "$BATCH" "$LATENCY_MS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, c, b, lat = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
assert r["ok"] and r["inputs"] == n, r
rate = n / (r["elapsed_ms"] / 1000.0)
ideal = c * b / (lat / 1000.0)
print(json.dumps({"bench": "embed-client", "inputs": n, "requests": r["requests"],
                  "concurrency": c, "batch": b, "latency_ms": lat,
                  "elapsed_ms": round(r["elapsed_ms"], 1), "inputs_per_s": round(rate, 1),
                  "ideal_per_s": round(ideal, 1), "fraction": round(rate / ideal, 4)}))
PY
