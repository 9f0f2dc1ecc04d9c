#!/bin/bash
# End-to-end build benchmark on the debian-docs corpus (datasets/debian-docs):
# sage-indexer build against two peers a user could pick instead, in one run
# on the same files with the page cache warm: SQLite FTS5 (pdftotext, Python's
# html.parser and gzip feeding a contentless table) and Xapian's omindex.
# Each tool runs REPS times; medians, min-max spread and SAGE/peer ratios are
# printed. Figures are printed, not enforced.
#
#   scripts/bench/indexer-bench.sh [CORPUS]     CORPUS defaults to build/debian-docs,
#                                               built by datasets/debian-docs/build.sh
# REPS (default 2) runs per tool; SUBSET=N indexes only the first N packages of
# datasets/debian-docs/packages.txt; SAGE_BUILD (default build) holds sage-indexer;
# scratch goes under ${TMPDIR:-/tmp} and is removed at exit. Missing peers
# (sqlite3, xapian-omega, poppler-utils, time) are installed with apt-get.
# QUICK=1: REPS 1 and SUBSET 7 (about 30 MB) unless set, no OCR pass. Figures
# are recorded through fig.py in $SAGE_BUILD/bench/figures/indexer-bench.json.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    REPS=${REPS:-1}
    SUBSET=${SUBSET:-7}
else
    REPS=${REPS:-2}
    SUBSET=${SUBSET:-0}
fi
corpus=${1:-$repo/build/debian-docs}
indexer=${SAGE_BUILD:-$repo/build}/sage-indexer
figs=${SAGE_BUILD:-$repo/build}/bench/figures/indexer-bench.json
rm -f "$figs"
pins=$repo/datasets/debian-docs/packages.txt

die() { echo "indexer-bench: $*" >&2; exit 1; }
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer"
[[ $SUBSET =~ ^[0-9]+$ ]] || die "SUBSET must be a number of packages"
[[ -x $indexer ]] || die "'$indexer' not found (make, or set SAGE_BUILD)"

# Peers and the measuring tools, installed if missing (Debian package names).
# shellcheck source=scripts/bench/common.sh
. "$here/common.sh"
bench_need indexer-bench sqlite3 xapian-omega xapian-tools poppler-utils time python3 || exit 1
PY=/usr/bin/python3     # Debian's, whose sqlite3 module has FTS5
TIME=/usr/bin/time
fig() { "$PY" "$here/fig.py" "$@"; }
"$PY" -c 'import sqlite3; sqlite3.connect(":memory:").execute("create virtual table t using fts5(b)")' ||
    die "$PY has no FTS5"

if [[ ! -f $corpus/MANIFEST.tsv ]]; then
    [[ $# -eq 0 ]] || die "'$corpus' has no MANIFEST.tsv"
    "$repo/datasets/debian-docs/build.sh" "$corpus" >&2
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sage-ibench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 1' HUP INT TERM     # through the EXIT trap

# The packages to index, in packages.txt order; the tools see them as the
# folders of one tree (hard links, so no copy) without MANIFEST.tsv.
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$pins" | awk '{ print $1 }')
((SUBSET == 0 || SUBSET >= ${#pkgs[@]})) || pkgs=("${pkgs[@]:0:SUBSET}")
tree=$scratch/corpus
mkdir "$tree"
for p in "${pkgs[@]}"; do
    [[ -d $corpus/$p ]] || die "'$corpus/$p' is missing; rebuild the corpus"
    cp -al "$corpus/$p" "$tree/$p" 2>/dev/null || cp -a "$corpus/$p" "$tree/$p"
done
read -r in_files in_bytes < <(printf '%s\n' "${pkgs[@]}" | awk -F'\t' '
    NR == FNR { want[$1] = 1; next }
    { split($1, a, "/") } a[1] in want { n++; s += $2 } END { print n + 0, s + 0 }' - "$corpus/MANIFEST.tsv")
find "$tree" -type f -exec cat {} + >/dev/null    # warm the page cache

ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
echo "== machine"
echo "cpu:     $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "cores:   $(grep -c '^processor' /proc/cpuinfo) (nproc $(nproc))"
echo "memory:  $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "kernel:  $(uname -r)"
echo "== tools"
echo "$("$indexer" --version) ($indexer, git $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "sqlite3 $("$PY" -c 'import sqlite3; print(sqlite3.sqlite_version)') via python3 $(ver python3) (fts5, porter unicode61, contentless)"
echo "omindex $(ver xapian-omega), libxapian30 $(ver libxapian30)"
echo "pdftotext (poppler-utils) $(ver poppler-utils)"
echo "== corpus"
echo "$corpus: ${#pkgs[@]} packages, $in_files files, $(awk -v b="$in_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB; REPS=$REPS"
awk -F'\t' 'NR == FNR { want[$1] = 1; next }
    { split($1, a, "/") } a[1] in want {
        b = tolower($1); sub(/.*\//, "", b); gz = sub(/\.gz$/, "", b) ? ".gz" : ""
        if (b ~ /.\.(html?|xhtml)$/) t = "html"
        else if (b ~ /.\.pdf$/) t = "pdf"
        else if (b ~ /.\.(md|markdown|rst|txt|tex)$/) t = "text"
        else if (b ~ /.\.(zip|epub|odg|tar|tgz|tar\.[a-z0-9]+)$/) t = "archive"
        else t = "other"
        n[t gz]++ }
    END { for (t in n) printf "%s %d, ", t, n[t]; print "" }' <(printf '%s\n' "${pkgs[@]}") "$corpus/MANIFEST.tsv" |
    sed 's/, $//'
in_mb=$(awk -v b="$in_bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
corpus_what="Debian-docs $in_mb MB, $in_files files (${#pkgs[@]} packages), page cache warm"
fig title "$figs" "Indexer, end to end"
fig meta "$figs" command "SAGE_BUILD=${SAGE_BUILD:-$repo/build} QUICK=$QUICK REPS=$REPS SUBSET=$SUBSET bash scripts/bench/indexer-bench.sh $corpus"
fig meta "$figs" corpus "$corpus: ${#pkgs[@]} packages, $in_files files, $in_mb MB"
fig meta "$figs" settings "REPS=$REPS; sage-indexer build -q --ocr off; fts5: python3 + pdftotext + html.parser, contentless, porter unicode61; xapian: omindex"
fig meta "$figs" versions "$("$indexer" --version); sqlite3 $("$PY" -c 'import sqlite3; print(sqlite3.sqlite_version)') (python3 $(ver python3)); xapian-omega $(ver xapian-omega), libxapian30 $(ver libxapian30); poppler-utils $(ver poppler-utils)"

# The FTS5 builder: one row per file (archive members included), text from
# pdftotext for PDFs, html.parser for HTML, gzip for .gz; binary files skipped.
# Extraction, inserts, the final merge ('optimize') and VACUUM are all timed.
cat >"$scratch/fts5.py" <<'EOF'
import gzip, html.parser, io, os, sqlite3, subprocess, sys, tarfile, zipfile

BINARY = (".png", ".gif", ".jpg", ".jpeg", ".ico", ".svg", ".eps", ".xpm", ".db", ".inv", ".woff", ".ttf")

class Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip, self.out = 0, []
    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"): self.skip += 1
    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip: self.skip -= 1
    def handle_data(self, d):
        if not self.skip: self.out.append(d)

def html_text(data):
    p = Text()
    try:
        p.feed(data.decode("utf-8", "replace")); p.close()
    except Exception:
        pass
    return " ".join(p.out)

def pdf_text(path, data):
    r = subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", path if data is None else "-", "-"],
                       input=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return r.stdout.decode("utf-8", "replace")

def texts(name, data, path=None):
    """(text) for each document in one file; data None means read path."""
    low = name.lower()
    if low.endswith(".gz"):
        if data is None:
            with open(path, "rb") as f: data = f.read()
        try:
            data = gzip.decompress(data)
        except Exception:
            return
        yield from texts(name[:-3], data); return
    if low.endswith(BINARY):
        return
    if low.endswith(".pdf"):
        yield pdf_text(path, data); return
    if low.endswith((".zip", ".epub", ".odg", ".tar", ".tgz")) or ".tar." in low:
        if data is None:
            with open(path, "rb") as f: data = f.read()
        try:
            if zipfile.is_zipfile(io.BytesIO(data)):
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    for m in sorted(z.namelist()):
                        if not m.endswith("/"):
                            yield from texts(m, z.read(m))
            else:
                with tarfile.open(fileobj=io.BytesIO(data)) as t:
                    for m in sorted(t.getmembers(), key=lambda m: m.name):
                        if m.isfile():
                            yield from texts(m.name, t.extractfile(m).read())
        except Exception:
            pass
        return
    if data is None:
        with open(path, "rb") as f: data = f.read()
    if b"\0" in data[:8192]:
        return
    if low.endswith((".html", ".htm", ".xhtml")):
        yield html_text(data)
    else:
        yield data.decode("utf-8", "replace")

db, root = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=OFF")
con.execute("PRAGMA synchronous=OFF")
con.execute("CREATE VIRTUAL TABLE t USING fts5(body, content='', tokenize='porter unicode61 remove_diacritics 2')")
n = nbytes = 0
with con:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for fn in sorted(files):
            p = os.path.join(d, fn)
            for text in texts(fn, None, p):
                if text.strip():
                    n += 1; nbytes += len(text)
                    con.execute("INSERT INTO t(rowid, body) VALUES (?, ?)", (n, text))
    con.execute("INSERT INTO t(t) VALUES ('optimize')")
con.execute("VACUUM")
con.close()
print(n, nbytes)
EOF

# Median, min and max of the numbers on stdin: "MED MIN MAX".
stats() {
    sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        print m, v[1], v[NR] }'
}

# One timed run: measure TOOL CMD...; appends "wall user+sys rss_kb" to
# $scratch/TOOL.t. Output goes to $scratch/TOOL.out, shown if it fails.
measure() {
    local tool=$1; shift
    if ! "$TIME" -f '%e %U %S %M' -o "$scratch/time" "$@" >"$scratch/$tool.out" 2>&1; then
        cat "$scratch/$tool.out" >&2
        die "$tool failed: $*"
    fi
    awk '{ printf "%s %.2f %d\n", $1, $2 + $3, $4 }' "$scratch/time" >>"$scratch/$tool.t"
}

libs=()
for p in "${pkgs[@]}"; do libs+=(--library "$p=$tree/$p"); done

echo "== runs"
for ((r = 1; r <= REPS; r++)); do
    rm -f "$scratch"/sage.sage* "$scratch/fts5.db" && rm -rf "$scratch/xapian"
    # --ocr off: the peers read no text out of page images; what OCR of the
    # corpus's scanned pages costs is measured once, after the runs
    measure sage "$indexer" build -q --ocr off --out "$scratch/sage.sage" \
        --report "$scratch/report.json" "${libs[@]}"
    stat -c %s "$scratch/sage.sage" >>"$scratch/sage.size"
    measure fts5 "$PY" "$scratch/fts5.py" "$scratch/fts5.db" "$tree"
    stat -c %s "$scratch/fts5.db" >>"$scratch/fts5.size"
    measure xapian omindex --db "$scratch/xapian" --url / "$tree"
    du -sb "$scratch/xapian" | cut -f1 >>"$scratch/xapian.size"
    echo "rep $r: sage $(tail -n 1 "$scratch/sage.t" | cut -d' ' -f1) s, fts5 $(tail -n 1 "$scratch/fts5.t" | cut -d' ' -f1) s, xapian $(tail -n 1 "$scratch/xapian.t" | cut -d' ' -f1) s"
done

# Documents each tool ended up with (they read different sets of types).
declare -A docs
docs[sage]=$("$PY" -c 'import json, sys; s = json.load(open(sys.argv[1]))["summary"]; print(s["indexed"], "docs,", s["chunks"], "chunks")' "$scratch/report.json")
docs[fts5]="$(cut -d' ' -f1 "$scratch/fts5.out" | tail -n 1) docs"
docs[xapian]="$(xapian-delve "$scratch/xapian" 2>/dev/null | sed -n 's/^number of documents[^0-9]*//p') docs"
"$indexer" info --json "$scratch/sage.sage" >"$scratch/info.json"
read -r sec_post sec_lex sec_text < <("$PY" -c 'import json, sys
s = {x["name"]: x["stored_bytes"] for x in json.load(open(sys.argv[1]))["sections"]}
print(s.get("postings", 0), s.get("lexicon", 0), s.get("chunk_text", 0))' "$scratch/info.json")
xapian-compact "$scratch/xapian" "$scratch/xapian.compact" >/dev/null
xapian_compact=$(du -sb "$scratch/xapian.compact" | cut -f1)

echo
printf '%-7s %-22s %-8s %-16s %-10s %-7s %-8s %s\n' tool 'wall s med (min-max)' 'cpu s' 'peak RSS MB' 'size MB' 'MB/s' 'files/s' 'documents'
declare -A wall rss size
for tool in sage fts5 xapian; do
    read -r wm wlo whi < <(cut -d' ' -f1 "$scratch/$tool.t" | stats)
    read -r cm _ _ < <(cut -d' ' -f2 "$scratch/$tool.t" | stats)
    read -r rm_ rlo rhi < <(cut -d' ' -f3 "$scratch/$tool.t" | stats)
    read -r sm _ _ < <(stats <"$scratch/$tool.size")
    wall[$tool]=$wm rss[$tool]=$rm_ size[$tool]=$sm
    awk -v t="$tool" -v wm="$wm" -v wlo="$wlo" -v whi="$whi" -v cm="$cm" -v rm="$rm_" -v rlo="$rlo" -v rhi="$rhi" \
        -v sm="$sm" -v ib="$in_bytes" -v nf="$in_files" -v d="${docs[$tool]}" 'BEGIN {
        printf "%-7s %-22s %-8.1f %-16s %-10.1f %-7.2f %-8.1f %s\n", t,
            sprintf("%.1f (%.1f-%.1f)", wm, wlo, whi), cm,
            sprintf("%.0f (%.0f-%.0f)", rm / 1024, rlo / 1024, rhi / 1024),
            sm / 1e6, ib / 1e6 / wm, nf / wm, d }'
done
echo
for peer in fts5 xapian; do
    awk -v p="$peer" -v w1="${wall[sage]}" -v w2="${wall[$peer]}" -v r1="${rss[sage]}" -v r2="${rss[$peer]}" \
        -v s1="${size[sage]}" -v s2="${size[$peer]}" 'BEGIN {
        printf "SAGE/%-6s wall %.2fx, peak RSS %.2fx, size %.2fx\n", p, w1 / w2, r1 / r2, s1 / s2 }'
done
awk -v p="$sec_post" -v l="$sec_lex" -v t="$sec_text" -v f="${size[fts5]}" -v x="$xapian_compact" 'BEGIN {
    printf "SAGE postings %.1f MB + lexicon %.1f MB = %.1f MB; FTS5 contentless DB %.1f MB (%.2fx); xapian-compact DB %.1f MB\n",
        p / 1e6, l / 1e6, (p + l) / 1e6, f / 1e6, (p + l) / f, x / 1e6
    printf "(SAGE'"'"'s file also stores the chunk text for snippets, %.1f MB compressed; FTS5 stores none, and keeps\n", t / 1e6
    printf " positions, one row per file; SAGE keeps no positions, one entry per chunk)\n" }'
for tool in sage fts5 xapian; do
    w=() c=() r=() m=() z=()
    while read -r tw tc tr; do
        w+=("$tw") c+=("$tc") r+=("$(awk -v k="$tr" 'BEGIN { printf "%.1f", k / 1024 }')")
        m+=("$(awk -v b="$in_bytes" -v t="$tw" 'BEGIN { printf "%.3f", b / 1e6 / t }')")
    done <"$scratch/$tool.t"
    while read -r b; do z+=("$(awk -v b="$b" 'BEGIN { printf "%.3f", b / 1e6 }')"); done <"$scratch/$tool.size"
    fig add "$figs" index-wall-s "$tool" "${w[@]}" --unit s --better lower \
        --what "indexing wall time, $corpus_what, sage --ocr off"
    fig add "$figs" index-cpu-s "$tool" "${c[@]}" --unit s --better lower \
        --what "indexing CPU time (user+sys, children included), $corpus_what"
    fig add "$figs" index-mbps "$tool" "${m[@]}" --unit MB/s --better higher \
        --what "indexing throughput over the input bytes (every file, images included), $corpus_what"
    fig add "$figs" index-rss-mb "$tool" "${r[@]}" --unit MB --better lower \
        --what "indexing peak RSS (largest process), $corpus_what"
    fig add "$figs" index-size-mb "$tool" "${z[@]}" --unit MB --better lower \
        --what "index size on disk, $corpus_what (SAGE's includes compressed chunk text; FTS5 contentless; xapian as omindex left it)"
done
fig add "$figs" index-size-mb xapian-compact "$(awk -v b="$xapian_compact" 'BEGIN { printf "%.3f", b / 1e6 }')"
fig add "$figs" postings-lexicon-mb sage "$(awk -v p="$sec_post" -v l="$sec_lex" 'BEGIN { printf "%.3f", (p + l) / 1e6 }')" \
    --unit MB --better lower --what "inverted index alone (SAGE postings + lexicon) vs the FTS5 contentless DB, $corpus_what"
fig add "$figs" postings-lexicon-mb fts5 "$(awk -v b="${size[fts5]}" 'BEGIN { printf "%.3f", b / 1e6 }')"
fig note "$figs" "documents: sage ${docs[sage]}; fts5 ${docs[fts5]}; xapian ${docs[xapian]} (the tools read different sets of types)"
fig note "$figs" "SAGE's file also stores the chunk text for snippets; FTS5 stores none and keeps positions, one row per file; SAGE keeps no positions, one entry per chunk"
echo "MB/s and files/s are over the input: $in_files files, $(awk -v b="$in_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB (every file, images included); cpu = user+sys, children included"
echo
echo "chunk text with a trained zstd dictionary (measured, not adopted: see scripts/bench/chunk_dict.c):"
"$SAGE_BUILD/bench/chunk_dict" "$scratch/sage.sage"
[[ $QUICK == 1 ]] && exit 0
echo
echo "OCR of the pages without a text layer (tesseract, the default; not in the runs above):"
t0=$(date +%s.%N)
"$indexer" build -q --out "$scratch/ocr.sage" "${libs[@]}" 2>"$scratch/ocr.log"
t1=$(date +%s.%N)
ocr_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
"$indexer" info --json "$scratch/ocr.sage" | jq -r --arg s "$ocr_s" \
    '"  \(.build.counts.ocr_pages) pages read by OCR, \(.build.counts.needs_ocr) files still with unread pages; the build took \($s) s"'
fig add "$figs" index-wall-s-ocr sage "$ocr_s" --unit s --better lower \
    --what "indexing wall time with OCR of the pages without a text layer (tesseract), $corpus_what"
