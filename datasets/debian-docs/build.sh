#!/bin/bash
# Builds the debian-docs corpus: the documentation trees (usr/share/doc) of the
# Debian packages pinned in packages.txt, one folder per package, plus
# MANIFEST.tsv (path, size, sha256). The .debs are cached and checked against
# their pinned sha256, so a second run downloads nothing and the same pins give
# the same tree. Indexing and benchmarking it are left to scripts/bench/.
#
#   build.sh [OUTDIR]     default build/debian-docs (relative to the repository)
#   build.sh --pin        rewrite packages.txt with apt's current candidates
#
# DEB_CACHE (default build/cache/debian-docs) holds the .debs.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pins=$here/packages.txt

die() { echo "debian-docs: $*" >&2; exit 1; }

# Package names, versions and sums from packages.txt, comments and blank lines dropped.
read_pins() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$pins"; }

if [[ ${1:-} == --pin ]]; then
    tmp=$(mktemp "$pins.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    grep '^#' "$pins" >"$tmp"
    while read -r pkg _; do
        ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
        [[ -n $ver && $ver != "(none)" ]] || die "'$pkg' has no candidate version (apt-get update?)"
        sum=$(apt-cache show "$pkg=$ver" | awk '/^SHA256:/ { print $2; exit }')
        [[ -n $sum ]] || die "'$pkg=$ver' has no SHA256 field"
        echo "$pkg $ver $sum" >>"$tmp"
    done < <(read_pins)
    mv "$tmp" "$pins"
    trap - EXIT
    echo "debian-docs: pinned $(read_pins | wc -l) packages in $pins"
    exit 0
fi
[[ $# -le 1 && ${1:-} != -* ]] || { echo "usage: build.sh [--pin | OUTDIR]" >&2; exit 2; }

out=${1:-$repo/build/debian-docs}
cache=${DEB_CACHE:-$repo/build/cache/debian-docs}
for tool in apt-get apt-cache dpkg-deb sha256sum realpath; do
    command -v "$tool" >/dev/null || die "'$tool' not found (this needs Debian or a derivative)"
done
mkdir -p "$cache" "$(dirname "$out")"
out=$(realpath -m "$out")
cache=$(realpath "$cache")

work=$(mktemp -d "$(dirname "$out")/.debian-docs.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM     # through the EXIT trap

# Cache path of PKG=VER, named as apt-get download names it.
deb_path() { echo "$cache/${1}_${2//:/%3a}_all.deb"; }

# Fetches PKG=VER into the cache unless a copy with sha256 SUM is there.
fetch() {
    local pkg=$1 ver=$2 sum=$3 deb dl apt_sum got
    deb=$(deb_path "$pkg" "$ver")
    if [[ -f $deb ]] && [[ $(sha256sum <"$deb" | cut -d' ' -f1) == "$sum" ]]; then
        return 0
    fi
    apt_sum=$(apt-cache show "$pkg=$ver" 2>/dev/null | awk '/^SHA256:/ { print $2; exit }') || true
    [[ -n $apt_sum ]] || die "apt does not know '$pkg=$ver'; run apt-get update, or fetch it from snapshot.debian.org into $cache"
    [[ $apt_sum == "$sum" ]] || die "'$pkg=$ver': apt says sha256 $apt_sum, packages.txt pins $sum"
    dl=$(mktemp -d "$cache/.dl.XXXXXX")
    # As root, apt drops to _apt to download; the folder must be writable by it.
    if ((EUID == 0)) && id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
    (cd "$dl" && apt-get download -q "$pkg=$ver") >"$work/apt.log" 2>&1 ||
        { cat "$work/apt.log" >&2; rm -rf "$dl"; die "cannot download '$pkg=$ver'"; }
    got=$(sha256sum "$dl"/*.deb | cut -d' ' -f1)
    [[ $got == "$sum" ]] || { rm -rf "$dl"; die "'$pkg=$ver': downloaded sha256 $got, expected $sum"; }
    mv "$dl"/*.deb "$deb"
    rm -rf "$dl"
    echo "debian-docs: downloaded $pkg $ver"
}

# Where symlink L inside ROOT points, followed through further links (8 at
# most) without leaving ROOT: absolute targets are taken relative to ROOT.
# Prints nothing if the chain leaves ROOT, dangles or is too long.
resolve() {
    local root=$1 l=$2 t r i
    r=$l
    for ((i = 0; i < 8; i++)); do
        [[ -L $r ]] || { [[ -e $r ]] && echo "$r"; return 0; }
        t=$(readlink -- "$r")
        case $t in
        /*) r=$(realpath -m -s -- "$root$t") ;;
        *) r=$(realpath -m -s -- "$(dirname -- "$r")/$t") ;;
        esac
        [[ $r == "$root"/* ]] || return 0
    done
}

# Replaces the symlinks under ROOT/usr/share/doc with copies of what they
# point to inside the package (R's manuals, debian-reference's HTML), and
# drops the rest: links out of the package (shared JavaScript), dangling
# ones, and links to folders already under usr/share/doc (duplicates).
materialize() {
    local root=$1 doc=$1/usr/share/doc pass l r n
    for ((pass = 0; pass < 8; pass++)); do
        n=0
        while IFS= read -r -d '' l; do
            n=$((n + 1))
            r=$(resolve "$root" "$l")
            rm -f -- "$l"
            if [[ -z $r ]]; then
                continue
            elif [[ -f $r ]]; then
                cp -- "$r" "$l"
            elif [[ -d $r && $r != "$doc" && $r != "$doc"/* ]]; then
                cp -r -- "$r" "$l"    # its own links are handled next pass
            fi
        done < <(find "$doc" -type l -print0 | sort -z)
        ((n > 0)) || return 0
    done
    die "'$root': symlinks still left after $pass passes"
}

mapfile -t lines < <(read_pins)
((${#lines[@]} > 0)) || die "no packages in $pins"
for line in "${lines[@]}"; do
    read -r pkg ver sum extra <<<"$line"
    [[ -n $sum && -z ${extra:-} ]] || die "bad line in packages.txt: '$line'"
    fetch "$pkg" "$ver" "$sum"
done

new=$work/tree
mkdir -p "$new"
for line in "${lines[@]}"; do
    read -r pkg ver sum <<<"$line"
    stage=$work/stage
    rm -rf "$stage"
    mkdir -p "$stage"
    dpkg-deb -x "$(deb_path "$pkg" "$ver")" "$stage"
    [[ -d $stage/usr/share/doc ]] || die "'$pkg' has no usr/share/doc"
    materialize "$stage"
    find "$stage/usr/share/doc" -depth -type d -empty -delete
    mkdir -p "$new/$pkg"
    cp -r "$stage/usr/share/doc/." "$new/$pkg/"
done
rm -rf "$stage"
chmod -R u+rwX,go+rX,go-w "$new"

# MANIFEST.tsv: path (relative to OUTDIR), size, sha256; sorted by path.
if find "$new" -name $'*[\t\n\\]*' | grep -q .; then
    die "a file name holds a tab, newline or backslash; MANIFEST.tsv cannot list it"
fi
(cd "$new" && find . -type f -printf '%P\t%s\n' | sort >"$work/sizes")
(cd "$new" && cut -f1 "$work/sizes" | tr '\n' '\0' | xargs -0 sha256sum) >"$work/sums"
paste "$work/sizes" <(cut -d' ' -f1 "$work/sums") >"$new/MANIFEST.tsv"
[[ $(wc -l <"$new/MANIFEST.tsv") -eq $(wc -l <"$work/sizes") ]] || die "manifest is incomplete"

rm -rf "$out"
mv "$new" "$out"

# Totals by type: the last extension, lowercased, with .gz kept on as in
# "html.gz" and tarballs as "tar.xz"; files without one count as "(none)".
echo "debian-docs: $out (MANIFEST.tsv sha256 $(sha256sum <"$out/MANIFEST.tsv" | cut -d' ' -f1))"
awk -F'\t' '
function ext(p,    b, e, gz) {
    b = tolower(p); sub(/.*\//, "", b)
    if (b ~ /.\.tar\.[a-z0-9]+$/) { sub(/.*\.tar\./, "", b); return "tar." b }
    if (b ~ /.\.gz$/) { gz = ".gz"; sub(/\.gz$/, "", b) }
    e = (b ~ /.\./) ? b : ""
    sub(/.*\./, "", e)
    return (e == "" ? "(none)" : e) gz
}
{ t = ext($1); n[t]++; s[t] += $2; N++; S += $2 }
END {
    printf "%-12s %7s %10s\n", "type", "files", "MB"
    for (t in n) printf "%-12s %7d %10.1f\n", t, n[t], s[t] / 1e6 | "sort -k3,3nr -k1,1"
    close("sort -k3,3nr -k1,1")
    printf "%-12s %7d %10.1f\n", "total", N, S / 1e6
}' "$out/MANIFEST.tsv"
