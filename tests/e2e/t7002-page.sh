#!/usr/bin/env bash
# The search page served by sage-searchd at /, in headless Chromium (Debian's
# chromium driven by playwright-core): a query typed shows the expected
# result, the library filter, paging, keyboard navigation to a document, a
# hostile document's markup shown as text with nothing run, a phone-sized
# window; then the same behind an API key entered in the page. Screenshots go
# to $SAGE_BUILD/test-artifacts/t7002/.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
SHOTS=$SAGE_BUILD/test-artifacts/t7002
IX=$T_ROOT/ix
mkdir -p "$IX" "$T_ROOT/hostile" "$SHOTS/open" "$SHOTS/key"
cat >"$T_ROOT/hostile/hostile.md" <<'MD'
# <img src=x onerror="window.pwned=1"> Hostile xylophone

The xylophone page holds markup: <script>window.pwned=2</script> and
<img src=x onerror="window.pwned=3"> and a [link](javascript:window.pwned=4).
MD
sage-indexer build -q --out "$IX/sample.sage" --library kestrel="$SAGE_TOP/datasets/sample/kestrel" \
    --library notes="$SAGE_TOP/datasets/sample/notes" --library hostile="$T_ROOT/hostile" 2>/dev/null ||
    { echo "Bail out! build"; exit 1; }

t_ok 'the page, its script and style: strict security headers, no key needed' '
    sd_start sd "$IX" --api-keys page-key &&
    curl -s -D h -o page.html "$SD_URL/" && grep -q "^HTTP/1.1 200" h &&
    grep -qi "^content-security-policy: default-src .none.; script-src .self." h &&
    grep -qi "^x-frame-options: DENY" h && grep -q "<script src=\"/ui/app.js\" defer>" page.html &&
    ! grep -qi "<script>" page.html &&
    curl -sf -o /dev/null "$SD_URL/ui/app.js" && curl -sf -o /dev/null "$SD_URL/ui/app.css" &&
    [ "$(curl -s -o /dev/null -w "%{http_code}" "$SD_URL/ui/nothing.js")" = 404 ] &&
    [ "$(curl -s -o /dev/null -w "%{http_code}" "$SD_URL/v1/search?q=x")" = 401 ] && sd_stop'

t_ok 'in Chromium: search, filter, page, keyboard, document view, hostile text, phone' '
    sd_start sd "$IX" && node "$SAGE_TOP/tests/lib/page-test.mjs" "$SD_URL/" "$SHOTS/open" >out 2>&1;
    rc=$?; cat out; sd_stop && [ "$rc" = 0 ] && ! grep -q "^not ok" out'

t_ok 'in Chromium behind an API key entered in the page' '
    sd_start sd "$IX" --api-keys page-key &&
    node "$SAGE_TOP/tests/lib/page-test.mjs" "$SD_URL/" "$SHOTS/key" page-key >out 2>&1;
    rc=$?; cat out; sd_stop && [ "$rc" = 0 ] && ls "$SHOTS/key"/*.png >/dev/null'

t_done
