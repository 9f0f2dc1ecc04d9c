# shellcheck shell=bash
# await_port FILE PID LOG [SECONDS]: waits (default 60 s) until the daemon
# PID has written its port file FILE; fails, printing its LOG, when it exits
# first or the time runs out. For the scripts that start a server on a free
# loopback port (the demo, the benchmarks).
await_port() {
    local file=$1 pid=$2 log=$3 n=$((${4:-60} * 20))
    for _ in $(seq "$n"); do
        [ -s "$file" ] && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
        sleep 0.05
    done
    echo "no port in $file after ${4:-60} s" >&2
    return 1
}
