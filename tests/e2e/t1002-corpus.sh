#!/usr/bin/env bash
# The indexer on a corpus made at test time with every supported type and
# the hostile cases a documentation estate holds: the build succeeds, good
# files are found by query, and each bad one is in the report with its reason.
. "$SAGE_TOP/tests/lib/tap.sh"

# Builds the corpus in ./c and indexes it with a report into ./r.json.
corpus() {
    mkdir -p c/guide c/loop c/api out &&
    printf '# Guide\n\n## Install\n\nRun the zebrafish installer first.\n' > c/guide/install.md &&
    printf 'Tuning\n======\n\nThe quokka cache speeds up reads.\n' > c/guide/tuning.rst &&
    printf 'plain words about narwhal migration\n' > c/notes.txt &&
    printf '<html><head><title>Axolotl API</title><script>var secretword = 1;</script></head><body><h1>Axolotl API</h1><p>Call &amp; return the axolotl value.</p></body></html>' > c/api/index.html &&
    mkpdf c/manual.pdf --title "Pangolin Manual" "The pangolin manual, page one." "" "Page three mentions the okapi." &&
    printf 'archived words about the capybara\n' > inner.md &&
    mkarchive inner.zip zip docs/capybara.md=inner.md &&
    mkarchive c/bundle.tar.gz tar.gz nested/inner.zip=inner.zip readme.txt=@text:tapir\ bundled\ text &&
    mkarchive c/bomb.zip zip zeros.txt=@zeros:200000000 &&
    mkarchive c/many.zip zip $(for i in $(seq 1 1100); do printf 'f%s.txt=@text:x ' $i; done) &&
    mkarchive c/slip.zip zip ../../etc/evil.txt=@text:escaped\ wombat /abs/path.txt=@text:absolute\ dingo &&
    mkarchive c/secret.zip zip --passphrase pw hidden.txt=@text:encrypted\ lemur &&
    head -c $(($(stat -c %s c/bundle.tar.gz) / 2)) c/bundle.tar.gz > c/truncated.tar.gz &&
    printf '%%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n' > c/broken.pdf &&
    mkpdf c/slow.pdf $(for i in $(seq 1 300); do printf 'slowpage%s ' $i; done) &&
    printf 'caf\xe9 latin1 bytes and the word marmoset\n' > c/latin1.txt &&
    : > c/empty.txt &&
    printf 'unreadable ocelot\n' > c/noperm.txt && chmod 000 c/noperm.txt &&
    mkfifo c/pipe.txt &&
    ln -s .. c/loop/up && ln -s /etc/hostname c/outside.txt &&
    cp c/notes.txt c/copy-of-notes.txt &&
    head -c 4096 /dev/urandom > c/blob.bin &&
    mkdir -p c/.git && printf 'git internals\n' > c/.git/config
}
build() {
    sage-indexer build --out out/x.sage --report r.json --pdf-timeout 120000 --library docs=c 2> log
}
status_of() { jq -r --arg p "$1" '[.files[] | select(.path == $p) | .status] | first' r.json; }
reason_of() { jq -r --arg p "$1" '[.files[] | select(.path == $p) | .reason] | first' r.json; }
found() {   # found WORD PATH [INDEX]
    sage-indexer query --json "${3:-out/x.sage}" "$1" > q.json &&
    jq -e --arg p "$2" '.results[0].path == $p' q.json >/dev/null
}
paths() { jq -r '.files[].path' "${1:-r.json}" > paths.txt; }

t_ok 'build over a hostile corpus succeeds and verifies' '
    corpus && build && sage-indexer verify out/x.sage'

t_ok 'every supported type is found by query' '
    corpus && build &&
    found zebrafish guide/install.md && found quokka guide/tuning.rst &&
    found narwhal copy-of-notes.txt && found axolotl api/index.html &&
    found pangolin manual.pdf && found okapi manual.pdf &&
    found capybara "bundle.tar.gz!/nested/inner.zip!/docs/capybara.md" &&
    found tapir "bundle.tar.gz!/readme.txt" && found marmoset latin1.txt'

t_ok 'HTML: title kept, script dropped, entities decoded' '
    corpus && build &&
    sage-indexer query --json out/x.sage axolotl | jq -e ".results[0].title == \"Axolotl API\"" &&
    sage-indexer query --json out/x.sage secretword | jq -e ".total == 0"'

t_ok 'PDF: page numbers and the page without text marked needs-ocr' '
    corpus && build &&
    sage-indexer query --json out/x.sage okapi | jq -e ".results[0].page == 3" &&
    [ "$(status_of c/manual.pdf)" = indexed ] &&
    jq -e "[.files[] | select(.path == \"c/manual.pdf\") | .needs_ocr] == [\"1 of 3 pages have no text layer\"]" r.json'

t_ok 'zip bomb (ratio) and entry-count bomb are skipped with a reason' '
    corpus && build &&
    [ "$(status_of c/bomb.zip)" = skipped ] && reason_of c/bomb.zip | grep -qi "ratio\|expanded" &&
    [ "$(status_of c/many.zip)" = skipped ] && reason_of c/many.zip | grep -q "entries"'

t_ok 'zip-slip names never escape: sanitized or skipped' '
    corpus && build &&
    [ "$(status_of "c/slip.zip!/../../etc/evil.txt")" = skipped ] &&
    reason_of "c/slip.zip!/../../etc/evil.txt" | grep -q "unsafe name" &&
    found dingo "slip.zip!/abs/path.txt" &&
    jq -e "[.files[] | select(.status == \"indexed\") | .path | select(test(\"[.][.]/\"))] == []" r.json &&
    sage-indexer query --json out/x.sage wombat > q.json && jq -e ".total == 0" q.json'

t_ok 'encrypted member skipped with reason, truncated archive and broken PDF failed' '
    corpus && build &&
    reason_of "c/secret.zip!/hidden.txt" | grep -q encrypted &&
    [ "$(status_of c/truncated.tar.gz)" = failed ] &&
    [ "$(status_of c/broken.pdf)" = failed ]'

t_ok 'a PDF that exceeds --pdf-timeout costs one file, not the build' '
    corpus && sage-indexer build --out out/x.sage --report r.json --pdf-timeout 1 --library docs=c 2> log &&
    [ "$(status_of c/slow.pdf)" = failed ] && reason_of c/slow.pdf | grep -q "timed out" &&
    found zebrafish guide/install.md'

t_ok 'empty, unreadable, FIFO, binary, symlink loop and outside link are reported' '
    corpus && build &&
    [ "$(status_of c/empty.txt)" = skipped ] &&
    { [ "$(id -u)" = 0 ] || [ "$(status_of c/noperm.txt)" = failed ]; } &&
    [ "$(status_of c/pipe.txt)" = skipped ] && [ "$(status_of c/blob.bin)" = skipped ] &&
    reason_of c/loop/up | grep -q "already visited" &&
    reason_of c/outside.txt | grep -q "out of the root"'

t_ok 'identical content is indexed once, both paths kept' '
    corpus && build && [ "$(status_of c/copy-of-notes.txt)" = indexed ] &&
    [ "$(status_of c/notes.txt)" = duplicate ] &&
    sage-indexer query --json out/x.sage narwhal > q.json &&
    jq -e ".total == 1 and .results[0].path == \"copy-of-notes.txt\" and .results[0].aliases == [\"notes.txt\"]" q.json'

t_ok 'hidden files and VCS folders skipped by default, --hidden includes them' '
    corpus && build && paths r.json && ! grep -q "[.]git" paths.txt &&
    sage-indexer build --hidden --out out/h.sage --report h.json --library docs=c 2>/dev/null &&
    paths h.json && grep -q "c/[.]git/config" paths.txt'

t_ok '--include and --exclude globs' '
    corpus && sage-indexer build --out out/i.sage --include "*.md" --exclude "api" --library docs=c 2>/dev/null &&
    found zebrafish guide/install.md out/i.sage &&
    sage-indexer query --json out/i.sage narwhal | jq -e ".total == 0" &&
    sage-indexer build --out out/e.sage --exclude "api" --library docs=c 2>/dev/null &&
    sage-indexer query --json out/e.sage axolotl | jq -e ".total == 0"'

t_ok '--max-failures: past the limit the build fails and writes no index' '
    corpus && t_status 1 sage-indexer build --out out/f.sage --max-failures 0 --library docs=c &&
    grep -q "more than --max-failures" err && [ ! -e out/f.sage ]'

t_ok 'report summary counts agree with the index' '
    corpus && build &&
    n=$(sage-indexer info --json out/x.sage | jq .counts.documents) &&
    jq -e --argjson n "$n" ".summary.indexed == \$n and .summary.index_written" r.json'

t_ok '--shard I/N: shards are disjoint and together hold every document' '
    corpus && rm c/copy-of-notes.txt c/slow.pdf && build &&
    sage-indexer build -q --shard 0/2 --out out/s0.sage --library docs=c 2>/dev/null &&
    sage-indexer build -q --shard 1/2 --out out/s1.sage --library docs=c 2>/dev/null &&
    a=$(sage-indexer info --json out/s0.sage | jq .counts.documents) &&
    b=$(sage-indexer info --json out/s1.sage | jq .counts.documents) &&
    n=$(sage-indexer info --json out/x.sage | jq .counts.documents) &&
    [ $((a + b)) = "$n" ] && [ "$a" -gt 0 ] && [ "$b" -gt 0 ]'

# (slow.pdf is left out: whether a PDF beats its time limit is not
# deterministic, and the order of the files is what is under test)
t_ok 'one thread or four: the same index, byte for byte' '
    corpus && rm c/slow.pdf && sage-indexer build -q -j 1 --out out/j1.sage --library docs=c 2>/dev/null &&
    sage-indexer build -q -j 4 --out out/j4.sage --library docs=c 2>/dev/null &&
    cmp out/j1.sage out/j4.sage'

t_done
