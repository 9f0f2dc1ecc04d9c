# shellcheck shell=bash
# Sourced by the bench scripts.
#   bench_need WHO PACKAGE...   installs the Debian packages among PACKAGE...
#                               that are not installed (apt-get, through sudo
#                               unless root), telling so on stderr as WHO;
#                               non-zero when it cannot
#   bench_free_port             a free TCP port on 127.0.0.1
#   bench_nap_open DIR          makes DIR/nap, a FIFO nobody writes, and opens
#                               it on fd 9, for bench_nap
#   bench_nap SECONDS           waits SECONDS without starting a process (a
#                               read with a timeout on that FIFO), so polling
#                               loads the measured machine as little as it can
bench_need() {
    local who=$1 p sudo='' need=()
    shift
    for p in "$@"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
            need+=("$p")
    done
    ((${#need[@]})) || return 0
    echo "$who: installing ${need[*]}" >&2
    ((EUID == 0)) || sudo=sudo
    $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
        { echo "$who: cannot install ${need[*]}" >&2; return 1; }
}

bench_free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench_nap_open() {
    rm -f "$1/nap"
    mkfifo "$1/nap"
    exec 9<>"$1/nap"
}

bench_nap() { read -r -t "$1" -u 9 _ || true; }
