# tests/lib/fakegpu.py helpers for the end-to-end tests (sourced after tap.sh).
#   fg_start DIR [ARGS...]   starts the fake GPU server on 127.0.0.1:0 with its
#                            log, port file and pid in DIR; sets FG_PID, FG_PORT,
#                            FG_URL (http://127.0.0.1:PORT) and FG_DIR
#   fg_stop                  SIGTERM, waits for the exit, returns its status
#   fg_stats                 GET /_stats to stdout
#   fg_faults JSON           POST /_faults (merged into the fault settings)
#   fg_reset                 POST /_reset (zeroes the counters)
#   fg_run CMD [ARGS...]     runs a client: its stdout (JSON stats) to ./run.json,
#                            stderr to ./err
#   fg_fails WANT CMD [...]  fg_run, expecting a failure whose message holds WANT
#                            (and no sanitizer report)
#   fg_check FILTER FILE     jq -e FILTER FILE, printing FILE when it fails
# The PID goes to the exit trap through t_daemon (tap.sh), also from inside a
# t_ok body. The server also exits by itself after FG_IDLE seconds without a
# request, so it can never outlive a test.

: "${FG_DEADLINE:=20}" "${FG_IDLE:=120}"
FG_PID='' FG_PORT='' FG_URL='' FG_DIR=''

fg_start() {
    local dir=$1
    shift
    mkdir -p "$dir" && rm -f "$dir/port" || return 1
    python3 "$SAGE_TOP/tests/lib/fakegpu.py" --port-file "$dir/port" --idle-timeout "$FG_IDLE" \
        --log "$dir/fakegpu.log" "$@" </dev/null >"$dir/fakegpu.out" 2>&1 &
    FG_PID=$!
    FG_DIR=$dir
    t_daemon "$FG_PID"
    t_await_port "$FG_DEADLINE" "$dir/port" "$FG_PID" "$dir/fakegpu.out" || return 1
    FG_PORT=$(cat "$dir/port")
    FG_URL="http://127.0.0.1:$FG_PORT"
}

fg_stop() {
    t_stop "${1:-$FG_PID}" "$FG_DEADLINE"
}

fg_stats() {
    curl -sS --max-time 10 "$FG_URL/_stats"
}

fg_faults() {
    curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -d "$1" "$FG_URL/_faults" | grep -qx 200
}

fg_reset() {
    curl -sS --max-time 10 -o /dev/null -X POST "$FG_URL/_reset"
}

fg_run() {
    "$@" >run.json 2>err
}

fg_fails() {
    local want=$1
    shift
    if fg_run "$@"; then
        echo "$1 succeeded, expected: $want"
        return 1
    fi
    grep -qF -- "$want" err || { echo "expected '$want' in:"; cat err; return 1; }
    # A failing run must still be clean (its exit status alone hides a sanitizer report).
    ! grep -q "Sanitizer" err || { cat err; return 1; }
}

fg_check() {
    jq -e "$1" "$2" >/dev/null || { echo "failed: $1 on $2:"; cat "$2"; return 1; }
}
