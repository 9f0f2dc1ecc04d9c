# tests/lib/fakegpu.py helpers for the end-to-end tests (sourced after tap.sh).
#   fg_start DIR [ARGS...]   starts the fake GPU server on 127.0.0.1:0 with its
#                            log, port file and pid in DIR; sets FG_PID, FG_PORT,
#                            FG_URL (http://127.0.0.1:PORT) and FG_DIR
#   fg_stop                  SIGTERM, waits for the exit, returns its status
#   fg_stats                 GET /_stats to stdout
#   fg_faults JSON           POST /_faults (merged into the fault settings)
#   fg_reset                 POST /_reset (zeroes the counters)
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
    t_wait "$FG_DEADLINE" t_settled "$dir/port" "$FG_PID"
    if [ ! -s "$dir/port" ]; then
        echo "fakegpu.py did not start:"
        cat "$dir/fakegpu.out"
        return 1
    fi
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
