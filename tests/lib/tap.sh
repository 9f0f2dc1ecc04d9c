# TAP helpers for the end-to-end tests (sourced by tests/e2e/t*.sh).
#   t_ok 'what' 'cmd && cmd'   runs the body in its own scratch directory
#   t_done                     prints the plan and exits 0 only if all passed
# Scratch directories and logs are removed when every test passed and kept
# (their path printed) when one failed. Daemons started by a test are ended
# by PID from t_cleanup, which tests extend through T_PIDS or, from inside a
# t_ok body (a subshell, whose T_PIDS the trap never sees), $T_ROOT/.pids.
set -u

: "${SAGE_BUILD:?run the end-to-end tests through make test}"
: "${SAGE_TOP:?run the end-to-end tests through make test}"
export PATH="$SAGE_BUILD:$SAGE_BUILD/tests/lib:$PATH"
export LC_ALL=C

T_N=0
T_FAILED=0
T_PIDS=""
T_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/sage-$(basename "$0" .sh).XXXXXX")

t_cleanup() {
    [ -f "$T_ROOT/.pids" ] && T_PIDS="$T_PIDS $(cat "$T_ROOT/.pids")"
    for p in $T_PIDS; do
        kill "$p" 2>/dev/null
    done
    if [ "$T_FAILED" = 0 ]; then
        rm -rf "$T_ROOT"
    else
        echo "# logs kept in $T_ROOT"
    fi
}
trap t_cleanup EXIT

t_ok() {
    local what=$1 body=$2
    T_N=$((T_N + 1))
    local dir="$T_ROOT/$T_N"
    mkdir -p "$dir"
    if (cd "$dir" && set -o pipefail && eval "$body") >"$dir/.log" 2>&1; then
        echo "ok $T_N - $what"
    else
        echo "not ok $T_N - $what"
        T_FAILED=1
        sed 's/^/#   /' "$dir/.log" | tail -n 40
    fi
}

t_done() {
    echo "1..$T_N"
    [ "$T_FAILED" = 0 ]
    exit $?
}

# Waits until the command succeeds, polling every 20 ms, for at most
# $1 seconds; fails when the deadline passes.
t_wait() {
    local deadline=$1
    shift
    local end=$(($(date +%s%N) + deadline * 1000000000))
    until "$@"; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.02
    done
}

# Expects the command to exit with status $1; its stderr goes to ./err.
t_status() {
    local want=$1
    shift
    "$@" 2>err
    local got=$?
    [ "$got" = "$want" ] || { echo "expected status $want, got $got from: $*"; cat err; return 1; }
}

# ---- daemons (tests/lib/searchd.sh, tests/lib/fakegpu.sh) ----

# Notes a daemon's PID for the exit trap, from the top level or a t_ok body.
t_daemon() {
    echo "$1" >>"$T_ROOT/.pids"
    T_PIDS="$T_PIDS $1"
}

# Succeeds once file $1 is non-empty (a port file) or process $2 is gone.
t_settled() {
    [ -s "$1" ] || ! kill -0 "$2" 2>/dev/null
}

# Waits up to $1 seconds for daemon $3 to write its port file $2; when it
# does not, prints its log $4 and fails.
t_await_port() {
    t_wait "$1" t_settled "$2" "$3"
    [ -s "$2" ] || { echo "process $3 did not start:"; cat "$4"; return 1; }
}

t_gone() {
    ! kill -0 "$1" 2>/dev/null
}

# Sends SIGTERM to daemon $1 (a child of this shell), waits up to $2
# seconds for it to exit and returns its exit status.
t_stop() {
    local pid=$1 deadline=$2 st
    kill -TERM "$pid" 2>/dev/null
    t_wait "$deadline" t_gone "$pid" || { echo "process $pid did not stop"; return 1; }
    wait "$pid"
    st=$?
    sed -i "/^$pid\$/d" "$T_ROOT/.pids"
    return $st
}
