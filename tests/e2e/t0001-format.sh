#!/usr/bin/env bash
# Index file format end to end through sage-indexer: reproducible builds,
# the sha256 sidecar, info and verify, and clear errors on files that are not
# indexes.
. "$SAGE_TOP/tests/lib/tap.sh"
S=$SAGE_TOP/datasets/sample
LIBS="--library kestrel=$S/kestrel --library notes=$S/notes"

t_ok 'same input twice gives byte-identical files' '
    sage-indexer build --out a/x.sage $LIBS &&
    sage-indexer build --out b/x.sage $LIBS &&
    cmp a/x.sage b/x.sage && cmp a/x.sage.sha256 b/x.sage.sha256'

t_ok 'sidecar is sha256sum format and matches' '
    sage-indexer build --out out/idx.sage $LIBS &&
    (cd out && sha256sum -c idx.sage.sha256) &&
    grep -Eq "^[0-9a-f]{64}  idx.sage$" out/idx.sage.sha256'

t_ok 'no build time unless SOURCE_DATE_EPOCH or --build-time gives one' '
    sage-indexer build --out a.sage $LIBS &&
    sage-indexer info --json a.sage | jq -e ".build.build_time == null" &&
    SOURCE_DATE_EPOCH=1700000000 sage-indexer build --out b.sage $LIBS &&
    sage-indexer info --json b.sage | jq -e ".build.build_time == 1700000000" &&
    sage-indexer build --build-time 1700000001 --out c.sage $LIBS &&
    sage-indexer info --json c.sage | jq -e ".build.build_time == 1700000001" &&
    ! cmp -s a.sage b.sage'

t_ok 'info reports version, sections, counts and build record' '
    sage-indexer build --out x.sage $LIBS &&
    sage-indexer info --json x.sage > info.json &&
    jq -e ".format.major == 1 and .counts.documents == 10" info.json &&
    jq -e "[.sections[].name] == [\"build\",\"docs\",\"chunks\",\"chunk_text\",\"chunk_meta\",\"norms\",\"postings\",\"lexicon\"]" info.json &&
    jq -e ".format.minor == 3 and .counts.chunks >= 9" info.json &&
    jq -e ".sections | all(.offset % 4096 == 0)" info.json &&
    jq -e ".build.libraries[0].name == \"kestrel\"" info.json &&
    sage-indexer info x.sage > info.txt && grep -q "^documents:  10$" info.txt &&
    grep -q "zstd" info.txt'

t_ok 'verify accepts a good file with exit 0' '
    sage-indexer build --out x.sage $LIBS && sage-indexer verify x.sage > out &&
    grep -q "x.sage: ok" out'

t_ok 'verify names a damaged section and exits 1' '
    sage-indexer build --out x.sage $LIBS &&
    corrupt_section x.sage chunk_text 40 x01 &&
    sage-indexer info x.sage >/dev/null &&
    t_status 1 sage-indexer verify x.sage &&
    grep -q "checksum mismatch in section 3 (chunk_text)" err'

t_ok 'truncated copy is refused at open' '
    sage-indexer build --out x.sage $LIBS && head -c 12000 x.sage > t.sage &&
    t_status 1 sage-indexer info t.sage && grep -q "truncated" err'

t_ok 'empty file: one-line error, exit 1' '
    : > empty.sage && t_status 1 sage-indexer verify empty.sage &&
    [ $(wc -l < err) = 1 ] && grep -q "is empty" err'

t_ok 'directory: one-line error, exit 1' '
    mkdir d.sage && t_status 1 sage-indexer verify d.sage &&
    [ $(wc -l < err) = 1 ] && grep -q "not a regular file (a directory)" err'

t_ok 'FIFO: one-line error without blocking, exit 1' '
    mkfifo f.sage && t_status 1 timeout 10 sage-indexer verify f.sage &&
    [ $(wc -l < err) = 1 ] && grep -q "not a regular file (a FIFO)" err'

t_ok 'file of another kind: one-line error, exit 1' '
    gzip -c "$S/README.md" > other.sage && t_status 1 sage-indexer verify other.sage &&
    [ $(wc -l < err) = 1 ] && grep -q "bad magic" err'

t_ok 'missing file: one-line error, exit 1' '
    t_status 1 sage-indexer verify nothere.sage && [ $(wc -l < err) = 1 ] &&
    grep -q "cannot open .nothere.sage.: No such file" err'

t_ok 'usage errors exit 2 and name the flag or variable' '
    t_status 2 sage-indexer frobnicate && grep -q "unknown command" err &&
    t_status 2 sage-indexer build $LIBS && grep -q -- "--out is required" err &&
    t_status 2 sage-indexer build --out x.sage --max-file-size lots $LIBS &&
    grep -q -- "--max-file-size" err &&
    SAGE_MAX_FILE_SIZE=-3 t_status 2 sage-indexer build --out x.sage $LIBS &&
    grep -q "SAGE_MAX_FILE_SIZE" err &&
    t_status 2 sage-indexer build --out x.sage --library nameonly &&
    grep -q "NAME=PATH" err'

t_ok 'flags win over environment' '
    SAGE_OUT=env.sage sage-indexer build --out flag.sage $LIBS &&
    [ -f flag.sage ] && [ ! -e env.sage ] &&
    SAGE_OUT=env.sage sage-indexer build $LIBS && [ -f env.sage ]'

t_ok 'binary and oversized files are skipped with a reason' '
    mkdir src && printf "hello text\n" > src/a.txt && head -c 3000 /dev/urandom > src/b.bin &&
    head -c 5000 /dev/zero | tr "\0" "a" > src/c.txt &&
    sage-indexer build --out x.sage --max-file-size 4K src 2> log &&
    grep -q "skipping .src/b.bin.: binary file" log &&
    grep -q "skipping .src/c.txt.: larger than --max-file-size" log &&
    sage-indexer info --json x.sage | jq -e ".counts.documents == 1 and (.build.skipped | length) == 2"'

t_ok 'help documents every option and its variable' '
    sage-indexer build --help > h && grep -q -- "--max-file-size" h &&
    grep -q "SAGE_MAX_FILE_SIZE" h && grep -q "SOURCE_DATE_EPOCH" h &&
    sage-indexer --help | grep -q verify'

# Every --option in any command's --help appears in the man page.
man_covers_help() {
    sed 's/\\-/-/g' "$SAGE_TOP/docs/sage-indexer.1" > man.txt || return 1
    for cmd in build info verify query; do
        sage-indexer $cmd --help | grep -o -- '--[a-z0-9-]*' | sort -u > opts || return 1
        while read -r o; do
            grep -q -- "$o" man.txt || { echo "$o ($cmd) missing from docs/sage-indexer.1"; return 1; }
        done < opts
    done
}
t_ok 'the man page documents every option of every command' 'man_covers_help'

t_done
