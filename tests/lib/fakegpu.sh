# tests/lib/fakegpu.py helpers for the end-to-end tests (sourced after tap.sh).
#   fg_start DIR [ARGS...]   starts the fake GPU server on 127.0.0.1:0 with its
#                            log, port file and pid in DIR; sets FG_PID, FG_PORT,
#                            FG_URL (http://127.0.0.1:PORT) and FG_DIR
#   fg_stop                  SIGTERM, waits for the exit, returns its status
#   fg_stats                 GET /_stats to stdout
#   fg_faults JSON           POST /_faults (merged into the fault settings)
#   fg_reset                 POST /_reset (zeroes the counters)
# PIDs go to $T_ROOT/.pids too, so a server started inside a t_ok body (a
# subshell) is still killed by the exit trap. The server also exits by itself
# after FG_IDLE seconds without a request, so it can never outlive a test.

: "${FG_DEADLINE:=20}" "${FG_IDLE:=120}"
FG_PID='' FG_PORT='' FG_URL='' FG_DIR=''

fg_cleanup() {
    [ -f "$T_ROOT/.pids" ] && T_PIDS="$T_PIDS $(cat "$T_ROOT/.pids")"
    t_cleanup
}
trap fg_cleanup EXIT

fg_settled() {
    [ -s "$1/port" ] || ! kill -0 "$2" 2>/dev/null
}

fg_start() {
    local dir=$1
    shift
    mkdir -p "$dir" && rm -f "$dir/port" || return 1
    python3 "$SAGE_TOP/tests/lib/fakegpu.py" --port-file "$dir/port" --idle-timeout "$FG_IDLE" \
        --log "$dir/fakegpu.log" "$@" </dev/null >"$dir/fakegpu.out" 2>&1 &
    FG_PID=$!
    FG_DIR=$dir
    echo "$FG_PID" >>"$T_ROOT/.pids"
    T_PIDS="$T_PIDS $FG_PID"
    t_wait "$FG_DEADLINE" fg_settled "$dir" "$FG_PID"
    if [ ! -s "$dir/port" ]; then
        echo "fakegpu.py did not start:"
        cat "$dir/fakegpu.out"
        return 1
    fi
    FG_PORT=$(cat "$dir/port")
    FG_URL="http://127.0.0.1:$FG_PORT"
}

fg_gone() {
    ! kill -0 "$1" 2>/dev/null
}

fg_stop() {
    local pid=${1:-$FG_PID} st
    kill -TERM "$pid" 2>/dev/null
    t_wait "$FG_DEADLINE" fg_gone "$pid" || { echo "fakegpu $pid did not stop"; return 1; }
    wait "$pid"
    st=$?
    sed -i "/^$pid\$/d" "$T_ROOT/.pids"
    return $st
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
