# shellcheck shell=bash
# Sourced by the bench scripts: bench_need WHO PACKAGE... installs the Debian
# packages among PACKAGE... that are not installed (apt-get, through sudo
# unless root), telling so on stderr as WHO; returns non-zero when it cannot.
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
