#!/usr/bin/env bash
# Regenerates tests/golden/ from datasets/sample with the current build. Run
# by hand when a format version is released, never by the tests: files in
# v<N>/ are frozen once committed, and new versions get a new folder.
#   SAGE_BUILD=build bash tests/golden/make-golden.sh v1
set -euo pipefail
ver=${1:?usage: make-golden.sh vN}
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SAGE_BUILD:-$top/build}
g=$top/tests/golden
mkdir -p "$g/$ver" "$g/bad"
good=$g/$ver/sample.sage
SOURCE_DATE_EPOCH=1700000000 "$bin/sage-indexer" build --out "$good" \
    --library kestrel="$top/datasets/sample/kestrel" --library notes="$top/datasets/sample/notes"
rm -f "$good.sha256"
( cd "$g/$ver" && sha256sum sample.sage > sample.sage.sha256 )

cs=$bin/tests/lib/corrupt_section
bad() {  # bad NAME 'expected error text' [corrupt_section args...]
    local name=$1 want=$2
    shift 2
    cp "$good" "$g/bad/$name.sage"
    if [ $# -gt 0 ]; then "$cs" "$@" ; fi
    printf '%s\n' "$want" > "$g/bad/$name.expect"
}
: > "$g/bad/empty.sage"; printf 'is empty\n' > "$g/bad/empty.expect"
printf 'just some text, not an index\n' > "$g/bad/not-an-index.sage"
printf 'bad magic\n' > "$g/bad/not-an-index.expect"
head -c 8192 "$good" > "$g/bad/truncated.sage"; printf 'truncated\n' > "$g/bad/truncated.expect"
bad version-2 'has format version 2.' --rehash "$g/bad/version-2.sage" header 8 0200
bad header-flip 'header checksum mismatch' "$g/bad/header-flip.sage" header 70 x01
bad footer-flip 'footer checksum mismatch' "$g/bad/footer-flip.sage" footer 3 x80
bad text-flip 'checksum mismatch in section 3 (chunk_text)' "$g/bad/text-flip.sage" chunk_text 40 x10
bad text-flip-rehashed 'checksum mismatch in section 3 (chunk_text)' --rehash "$g/bad/text-flip-rehashed.sage" chunk_text 40 x10
bad postings-flip 'checksum mismatch in section 5 (postings)' "$g/bad/postings-flip.sage" postings 7 x04
# raw_len of section 1 (docs, zstd) is the u64 at 64 + 48 + 24.
bad zstd-length 'decodes to the wrong length' --rehash "$g/bad/zstd-length.sage" header 136 x01
# offset of section 2 (chunks) is the u64 at 64 + 96 + 8.
bad section-outside 'lies outside its place' --rehash "$g/bad/section-outside.sage" header 171 x40
bad padding 'non-zero bytes in padding' --rehash "$g/bad/padding.sage" file 5096 01
bad header-padding 'non-zero bytes in header padding' --rehash "$g/bad/header-padding.sage" file 4000 01
