#!/usr/bin/env bash
# OCR in the build: a PDF made at test time whose second page is only an
# image of words (a scan) is found by those words, read by the local
# tesseract by default and by the fake OCR server with --ocr-url; a dead
# OCR server leaves the page counted as needing OCR and the build whole;
# --ocr off reads no images. --reuse takes the text of a page whose image
# and OCR engine are unchanged from the previous index instead of reading
# it again, and each chunk says where its text came from.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/fakegpu.sh"
C=$T_ROOT/corpus
mkdir -p "$C"
mkpdf "$C/scan.pdf" "a text page about ordinary things" \
    "scan:The migratory quokka crossed Zanzibar harbour" >/dev/null

# The page of the first hit for $2 in index $1, or "-" without one.
hit_page() {
    sage-indexer query --json "$1" "$2" | jq -r '.results[0].page // "-"'
}

t_ok 'local tesseract: the scanned page is found by its words, on its page' '
    sage-indexer build -q --out l.sage --report r.json "$C" &&
    [ "$(hit_page l.sage quokka)" = 2 ] && [ "$(hit_page l.sage "zanzibar harbour")" = 2 ] &&
    [ "$(hit_page l.sage ordinary)" = 1 ] &&
    sage-indexer info --json l.sage | jq -e ".build.counts.ocr_pages == 1 and .build.counts.needs_ocr == 0" &&
    jq -e ".summary.ocr_pages == 1" r.json'

t_ok 'an OCR server (--ocr-url): the page image goes there, its answer is indexed' '
    fg_start srv --ocr-text "wombat lighthouse keeper" &&
    sage-indexer build -q --out r.sage --ocr-url "$FG_URL" "$C" &&
    [ "$(hit_page r.sage wombat)" = 2 ] && [ "$(hit_page r.sage quokka)" = - ] &&
    [ "$(hit_page r.sage ordinary)" = 1 ] &&
    fg_stats >stats.json && fg_check ".ocr_pages == 1 and (.ocr_served | length) == 1" stats.json &&
    fg_check ".ocr_last.model == \"olmocr\"" stats.json && fg_stop'

t_ok 'a dead OCR server: the page needs OCR, the build goes on' '
    fg_start srv && fg_stop &&
    sage-indexer build -q --out d.sage --ocr-url "$FG_URL" --ocr-retries 1 --report r.json "$C" 2>err &&
    [ "$(hit_page d.sage ordinary)" = 1 ] && [ "$(hit_page d.sage quokka)" = - ] &&
    sage-indexer info --json d.sage | jq -e ".build.counts.ocr_pages == 0 and .build.counts.needs_ocr == 1" &&
    jq -e "[.files[] | select(.needs_ocr != null) | .needs_ocr] | .[0] | test(\"OCR failed\")" r.json'

t_ok '--ocr off: no page is read from an image' '
    sage-indexer build -q --out o.sage --ocr off "$C" 2>err &&
    [ "$(hit_page o.sage quokka)" = - ] &&
    sage-indexer info --json o.sage | jq -e ".build.counts.needs_ocr == 1" &&
    t_status 2 sage-indexer build --out x.sage --ocr maybe "$C"'

L=$T_ROOT/1/l.sage R=$T_ROOT/2/r.sage   # built by the first two tests

# The source of the first hit for $2 in index $1.
hit_source() {
    sage-indexer query --json "$1" "$2" | jq -r '.results[0].source'
}

t_ok 'chunks say how their text was obtained' '
    [ "$(hit_source $L quokka)" = ocr-local ] && [ "$(hit_source $L ordinary)" = text ] &&
    [ "$(hit_source $R wombat)" = ocr-remote ]'

t_ok '--reuse, local tesseract: the unchanged page is taken, not read again' '
    sage-indexer build -q --out l2.sage --reuse $L --report r2.json "$C" &&
    jq -e ".summary.ocr_pages == 1 and .summary.ocr_reused == 1" r2.json &&
    [ "$(hit_page l2.sage quokka)" = 2 ] && [ "$(hit_source l2.sage quokka)" = ocr-local ] &&
    sage-indexer build -q --out l3.sage --reuse l2.sage --report r3.json "$C" &&
    jq -e ".summary.ocr_reused == 1" r3.json'

t_ok '--reuse, OCR server: an unchanged corpus sends no page, a changed page is sent' '
    fg_start srv --ocr-text "wombat lighthouse keeper" &&
    sage-indexer build -q --out r2.sage --reuse $R --ocr-url "$FG_URL" --report r4.json "$C" &&
    fg_stats >s1.json && fg_check ".ocr_pages == 0" s1.json &&
    jq -e ".summary.ocr_pages == 1 and .summary.ocr_reused == 1" r4.json &&
    [ "$(hit_page r2.sage wombat)" = 2 ] &&
    mkdir -p c2 && cp "$C/scan.pdf" c2/ &&
    mkpdf c2/other.pdf "another text page" "scan:Not the same picture at all" >/dev/null &&
    sage-indexer build -q --out r3.sage --reuse r2.sage --ocr-url "$FG_URL" --report r5.json c2 &&
    fg_stats >s2.json && fg_check ".ocr_pages == 1" s2.json &&
    jq -e ".summary.ocr_pages == 2 and .summary.ocr_reused == 1" r5.json && fg_stop'

t_ok '--reuse of an index read by another engine reads the page again' '
    sage-indexer build -q --out x2.sage --reuse $R --report r6.json "$C" &&
    jq -e ".summary.ocr_pages == 1 and .summary.ocr_reused == 0" r6.json &&
    [ "$(hit_page x2.sage quokka)" = 2 ]'

t_ok '--reuse of a missing or damaged file is refused' '
    t_status 1 sage-indexer build -q --out y.sage --reuse nosuch.sage "$C" &&
    head -c 5000 $L >bad.sage &&
    t_status 1 sage-indexer build -q --out y.sage --reuse bad.sage "$C" && [ ! -e y.sage ]'

t_done
