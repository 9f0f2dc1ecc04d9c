#!/usr/bin/env bash
# Every shell script we ship (scripts/, datasets/) passes shellcheck,
# warnings and style notes included; the operator tools answer --help.
. "$SAGE_TOP/tests/lib/tap.sh"
cd "$SAGE_TOP" || exit 1
mapfile -t scripts < <(
    { ls scripts/publish scripts/fetch-index scripts/swap
      find scripts datasets -name '*.sh' -type f; } | sort -u)

t_ok "shellcheck: ${#scripts[@]} scripts clean" '
    cd "$SAGE_TOP" && [ "${#scripts[@]}" -gt 10 ] && shellcheck -x "${scripts[@]}"'

t_ok 'publish, fetch-index and swap answer --help' '
    for s in publish fetch-index swap; do
        "$SAGE_TOP/scripts/$s" --help | grep -q "^usage: scripts/$s" || { echo "$s --help"; false; } || exit 1
    done'

t_done
