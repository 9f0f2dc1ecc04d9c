#!/usr/bin/env bash
# Verification stamps (format/stamp.h): the indexer and `verify --stamp`
# leave a .NAME.verified stamp, searchd serves a stamped file without reading
# it again and verifies (then stamps) anything else; a file changed in place,
# replaced, or given another file's stamp is verified in full and refused
# when corrupt; --verify=always ignores stamps.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
S=$SAGE_TOP/datasets/sample
IX=$T_ROOT/ix
mkdir -p "$IX"
sage-indexer build -q --out "$IX/a.sage" "$S" >"$T_ROOT/build.log" 2>&1

# "verified" of index $1 in the searchd at $SD_URL, "-" when not served.
verified() {
    curl -sf "$SD_URL/v1/indexes" | jq -er --arg n "$1" \
        '(.indexes[] | select(.name == $n) | .verified) // "-"'
}
# Flips the byte in the middle of file $1 in place (same size, same inode).
flip_middle() {
    local f=$1 off b
    off=$(($(stat -c %s "$f") / 2))
    b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    printf "$(printf '\\%03o' $(((b + 1) % 256)))" |
        dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

t_ok 'build leaves a stamp that names the file version' '
    test -f "$IX/.a.sage.verified" &&
    read -r m v dev ino size mt ct sum <"$IX/.a.sage.verified" &&
    [ "$m $v" = "sage-verified 1" ] && [ "$ino" = "$(stat -c %i "$IX/a.sage")" ] &&
    [ "$size" = "$(stat -c %s "$IX/a.sage")" ]'

t_ok 'verify stamps only when asked' '
    cp "$IX/a.sage" c.sage &&
    sage-indexer verify c.sage >out && ! test -e .c.sage.verified && grep -qx "c.sage: ok" out &&
    sage-indexer verify --stamp c.sage >out && test -f .c.sage.verified &&
    grep -qx "c.sage: ok, stamped" out'

t_ok 'verify --stamp refuses a corrupt file and writes no stamp' '
    cp "$IX/a.sage" bad.sage && flip_middle bad.sage &&
    ! sage-indexer verify --stamp bad.sage 2>err && ! test -e .bad.sage.verified &&
    grep -q "bad.sage" err'

t_ok 'searchd serves a stamped file without a full verify, stamps the others' '
    cp "$IX/a.sage" "$IX/b.sage" &&
    sd_start "$PWD/sd" "$IX" && [ "$(verified a)" = stamp ] && [ "$(verified b)" = full ] &&
    grep -q "index .a. .*(verification stamp" sd/searchd.log &&
    grep -q "index .b. .*(verified in full" sd/searchd.log &&
    test -f "$IX/.b.sage.verified" && sd_stop &&
    sd_start "$PWD/sd2" "$IX" && [ "$(verified b)" = stamp ] && sd_stop'

t_ok 'a file changed in place after its stamp is verified and refused' '
    cp "$IX/a.sage" "$IX/d.sage" && sage-indexer verify --stamp "$IX/d.sage" >/dev/null &&
    flip_middle "$IX/d.sage" &&
    sd_start "$PWD/sd" "$IX" && [ "$(verified d)" = - ] && [ "$(verified a)" = stamp ] &&
    grep -q "refusing index .d." sd/searchd.log && sd_stop && rm "$IX/d.sage"'

t_ok 'another file'\''s stamp, or a stamp left by a replaced file, vouches for nothing' '
    cp "$IX/a.sage" "$IX/e.sage" && cp "$IX/.a.sage.verified" "$IX/.e.sage.verified" &&
    cp "$IX/a.sage" "$IX/f.sage" && sage-indexer verify --stamp "$IX/f.sage" >/dev/null &&
    cp "$IX/a.sage" f.new && mv f.new "$IX/f.sage" &&
    sd_start "$PWD/sd" "$IX" && [ "$(verified e)" = full ] && [ "$(verified f)" = full ] &&
    sd_stop && rm "$IX/e.sage" "$IX/f.sage"'

t_ok '--verify=always reads every byte of a stamped file' '
    sd_start "$PWD/sd" "$IX" --verify=always && [ "$(verified a)" = full ] && sd_stop &&
    SAGE_VERIFY=always sd_start "$PWD/sd2" "$IX" && [ "$(verified a)" = full ] && sd_stop'

t_ok 'a bad --verify value is refused' '
    ! sage-searchd --index-dir "$IX" --verify=sometimes 2>err &&
    grep -q "expected stamp or always" err'

t_done
