#!/usr/bin/env bash
# sage-indexer build --hnsw against the fake GPU server: the HNSW section
# follows VECTORS with one node per chunk and the parameters asked for, the
# build record says how it was built (the report how long it took), verify
# and info accept it, one thread gives the same file twice; --hnsw without
# embeddings is a usage error. Searching: the graph finds what the exact scan
# finds, offline and through searchd (dense=hnsw), which says which it used
# and refuses dense=hnsw on an index without a graph.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/fakegpu.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
S=$SAGE_TOP/datasets/sample

build() {
    local out=$1
    shift
    sage-indexer build -q --out "$out" --embed-url "$FG_URL" --embed-model fake \
        --embed-batch 8 --hnsw "$@" "$S"
}
# The HNSW section header of $1: "m m0 max_level n entry n_upper", and the
# count of every level-0 list, one per line.
graph() {
    sage-indexer info --json "$1" >info.json &&
    python3 - "$1" "$(jq '.sections[] | select(.name == "hnsw") | .offset' info.json)" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
off = int(sys.argv[2])
m, m0, efc, top, n, entry, n_upper, off0 = struct.unpack_from("<IIIIQIIQ", data, off)
print(m, m0, top, n, entry, n_upper)
stride = (4 * (1 + m0) + 63) // 64 * 64
for i in range(n):
    cnt = struct.unpack_from("<I", data, off + off0 + i * stride)[0]
    ids = struct.unpack_from("<%dI" % cnt, data, off + off0 + i * stride + 4)
    assert all(x < n and x != i for x in ids), (i, ids)
    print(cnt)
PY
}

t_ok 'a graph of every chunk after the vectors, recorded in the build record' '
    fg_start srv --dim 48 --max-inputs 8 &&
    build g.sage --hnsw-m 4 --hnsw-ef-construction 40 --hnsw-threads 2 2>err &&
    grep -q "built the hnsw graph" err &&
    sage-indexer verify g.sage &&
    n=$(sage-indexer info --json g.sage | jq .counts.chunks) && [ "$n" -gt 10 ] &&
    graph g.sage >gr && set -- $(head -1 gr) && [ "$1 $2 $4" = "4 8 $n" ] &&
    [ "$(tail -n +2 gr | sort -n | head -1)" -ge 1 ] &&
    jq -e "[.sections[].name] | index(\"hnsw\") == index(\"vectors\") + 1" info.json &&
    jq -e ".build.embedding.hnsw == {m: 4, ef_construction: 40, threads: 2}" info.json &&
    jq -e ".hnsw | .nodes == $n and .m == 4 and .m0 == 8 and .ef_construction == 40" info.json &&
    sage-indexer info g.sage >info.txt && grep -q "^hnsw: *$n nodes" info.txt && fg_stop'

t_ok 'one thread: the same file twice; the defaults are recorded' '
    fg_start srv --dim 48 --max-inputs 8 &&
    build a.sage --hnsw-threads 1 --report a.json && build b.sage --hnsw-threads 1 &&
    cmp a.sage b.sage && jq -e ".summary.hnsw_build_s >= 0" a.json &&
    sage-indexer info --json a.sage >info.json &&
    jq -e ".build.embedding.hnsw == {m: 16, ef_construction: 200, threads: 1}" info.json &&
    fg_stop'

t_ok '--hnsw without embeddings, or with bad parameters: usage errors' '
    t_status 2 sage-indexer build --out x.sage --hnsw "$S" && grep -q "needs embeddings" err &&
    t_status 2 sage-indexer build --out x.sage --hnsw --embeddings off \
        --embed-url http://127.0.0.1:9 --embed-model fake "$S" &&
    t_status 2 sage-indexer build --out x.sage --hnsw --hnsw-m 1 "$S" &&
    t_status 2 sage-indexer build --out x.sage --hnsw --hnsw-ef-construction 0 "$S" &&
    ! test -e x.sage'

# dense hits of index $1 for "$2" found by method $3, as "chunk chunk ..."
hits() {
    sage-indexer query --json -k 5 --mode dense --dense "$3" --embed-url "$FG_URL" "$1" "$2" |
        jq -r "[.results[].chunk] | join(\" \")"
}

t_ok 'searching the graph finds what the exact scan finds; searchd says which it used' '
    fg_start srv --dim 48 --max-inputs 8 &&
    mkdir ix && build ix/g.sage --hnsw-threads 1 &&
    for q in "snapshot restore" "rotate certificates" "replication lag"; do
        e=$(hits ix/g.sage "$q" exact) && h=$(hits ix/g.sage "$q" hnsw) &&
        echo "$q: exact $e, hnsw $h" && [ -n "$e" ] && [ "$e" = "$h" ] || exit 1
    done &&
    sd_start sd ix --embed-url "$FG_URL" &&
    curl -sf "$SD_URL/v1/search?q=snapshot+restore&mode=dense&dense=hnsw&ef=64" >h.json &&
    jq -e ".dense_method == \"hnsw\" and (.hits | length) > 0" h.json &&
    curl -sf "$SD_URL/v1/search?q=snapshot+restore&mode=dense" >a.json &&
    jq -e ".dense_method == \"exact\"" a.json &&
    [ "$(jq -c "[.hits[].chunk]" h.json)" = "$(jq -c "[.hits[].chunk]" a.json)" ] &&
    [ "$(curl -s -o bad.json -w "%{http_code}" "$SD_URL/v1/search?q=x&mode=dense&dense=fast")" = 400 ] &&
    [ "$(curl -s -o bad.json -w "%{http_code}" "$SD_URL/v1/search?q=x&mode=dense&ef=0")" = 400 ] &&
    sd_stop && fg_stop'

t_ok 'dense=hnsw on an index built without a graph is refused clearly' '
    fg_start srv --dim 48 --max-inputs 8 && mkdir ix &&
    sage-indexer build -q --out ix/v.sage --embed-url "$FG_URL" --embed-model fake --embed-batch 8 "$S" &&
    sd_start sd ix --embed-url "$FG_URL" &&
    [ "$(curl -s -o e.json -w "%{http_code}" "$SD_URL/v1/search?q=snapshot&mode=dense&dense=hnsw")" = 400 ] &&
    jq -e ".error.code == \"no_hnsw\"" e.json &&
    ! sage-indexer query --mode dense --dense hnsw --embed-url "$FG_URL" ix/v.sage snapshot 2>err &&
    grep -q "no HNSW graph" err && sd_stop && fg_stop'

t_done
