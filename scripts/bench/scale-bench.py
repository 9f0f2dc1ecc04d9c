#!/usr/bin/python3
"""Helpers of scripts/bench/scale-bench.sh (the peers' side, and the report).

  scale-bench.py xapian-index CHUNKS.tsv STOPWORDS DB
  scale-bench.py fts5-index CHUNKS.tsv DB
  scale-bench.py fts5-run DB STOPWORDS QUERIES and|or REPS
  scale-bench.py report RESULTS.jsonl OUT.json

CHUNKS.tsv is gen_corpus's: ID TAB TEXT (the title, a space, the text).
Xapian indexes each line as search-bench.py does (TermGenerator, English
Snowball stemmer, SAGE's stop words dropped, no positions); its queries run
through search-bench.py xapian-run. FTS5 gets a contentless table (content=''),
tokenizer 'porter unicode61 remove_diacritics 2' (the Porter stemmer; FTS5 has
no stop words, so the index keeps them and the queries drop SAGE's), built
with one INSERT per chunk in one transaction, then 'optimize' (one b-tree
segment, as SAGE and Xapian end with) and VACUUM. Its query is the words of
the query text, each quoted, joined with OR (or), or with spaces (and), then
SELECT rowid ... WHERE t MATCH ? ORDER BY rank LIMIT 10 (rank: bm25()); only
execute() + fetchall() is timed, and call_overhead_ms is the median of the
same timing around SELECT 1, the part Python and the sqlite3 module add.
fts5-run prints one JSON line a pass, as search_bench does; report joins every
line the script collected into the JSON file and prints a table.
"""
import json
import re
import sqlite3
import statistics
import sys
import time

WORD = re.compile(r"[^\W_]+")


def xapian_index(tsv, stop_path, db_path):
    import xapian
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    sb = __import__("importlib").import_module("search-bench")
    db = xapian.WritableDatabase(db_path, xapian.DB_CREATE_OR_OVERWRITE)
    tg, _st = sb.term_generator(stop_path)
    n = 0
    with open(tsv, encoding="utf-8") as f:
        for line in f:
            i, _, text = line.rstrip("\n").partition("\t")
            doc = xapian.Document()
            tg.set_document(doc)
            tg.index_text_without_positions(text)
            db.replace_document(int(i), doc)
            n += 1
    db.commit()
    db.close()
    print(json.dumps({"engine": "xapian", "indexed": n}))


def fts5_index(tsv, db_path):
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE VIRTUAL TABLE t USING fts5(body, content='', "
                "tokenize='porter unicode61 remove_diacritics 2')")
    n = 0
    with con, open(tsv, encoding="utf-8") as f:
        for line in f:
            i, _, text = line.rstrip("\n").partition("\t")
            con.execute("INSERT INTO t(rowid, body) VALUES (?, ?)", (int(i), text))
            n += 1
        con.execute("INSERT INTO t(t) VALUES ('optimize')")
    con.execute("VACUUM")
    con.close()
    print(json.dumps({"engine": "fts5", "indexed": n}))


def pct(v, p):
    """Nearest-rank percentile of sorted v, as search_bench computes it."""
    if not v:
        return 0.0
    i = int(p / 100.0 * len(v) + 0.999999)
    return v[min(max(i, 1), len(v)) - 1]


def fts5_run(db_path, stop_path, queries, mode, reps):
    with open(stop_path, encoding="utf-8") as f:
        stop = {w.strip() for w in f if w.strip()}
    qs = []
    with open(queries, encoding="utf-8") as f:
        for line in f:
            words = [w for w in WORD.findall(line.lower()) if w not in stop]
            if words:
                qs.append((" OR " if mode == "or" else " ").join(f'"{w}"' for w in words))
    con = sqlite3.connect(db_path)
    cur = con.cursor()
    sql = "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank LIMIT 10"
    over = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        cur.execute("SELECT 1").fetchall()
        over.append(time.perf_counter_ns() - t0)
    overhead_ms = statistics.median(over) / 1e6
    for rep in range(-1, reps):
        lat, cpu = [], 0
        for q in qs:
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            cur.execute(sql, (q,)).fetchall()
            t1 = time.perf_counter_ns()
            cpu += time.thread_time_ns() - c0
            lat.append((t1 - t0) / 1e6)
        if rep < 0:
            continue
        total = sum(lat)
        lat.sort()
        print(json.dumps({
            "engine": "fts5", "mode": mode, "rep": rep, "queries": len(qs),
            "seconds": round(total / 1e3, 6), "qps": round(len(qs) / (total / 1e3), 1),
            "mean_ms": round(total / len(qs), 4), "p50_ms": round(pct(lat, 50), 4),
            "p95_ms": round(pct(lat, 95), 4), "p99_ms": round(pct(lat, 99), 4),
            "max_ms": round(lat[-1], 4), "call_overhead_ms": round(overhead_ms, 4),
            "cpu_qps": round(len(qs) / (cpu / 1e9), 1)}), flush=True)
    con.close()


QKEYS = ("qps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "cpu_qps", "call_overhead_ms")


def report(results, out):
    rows = [json.loads(l) for l in open(results, encoding="utf-8") if l.strip()]
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    by = {}
    for r in rows:
        if r.get("kind") in ("index", "query"):
            by.setdefault((r["engine"], r["n"]), []).append(r)
    engines = meta.get("engines", [])
    scales = meta.get("scales", [])
    res = []
    for n in scales:
        for e in engines:
            rs = by.get((e, n))
            if not rs:
                continue
            d = {"engine": e, "n": n}
            ix = next((r for r in rs if r["kind"] == "index"), None)
            if ix:
                d["index"] = {k: ix[k] for k in ("wall_s", "cpu_s", "rss_kb", "size_bytes",
                                                  "mb_s", "chunks_s", "input_bytes", "reps")}
            for mode in ("or", "and"):
                q = [r for r in rs if r["kind"] == "query" and r["mode"] == mode]
                if q:
                    v = {k: statistics.median([r[k] for r in q]) for k in QKEYS if k in q[0]}
                    v["reps"] = len(q)
                    v["queries"] = q[0].get("queries")
                    d["query" if mode == "or" else "query_and"] = v
            res.append(d)
    doc = {"machine": meta.get("machine"), "versions": meta.get("versions"),
           "config": meta.get("config"), "scales": scales, "engines": engines,
           "corpora": [r for r in rows if r.get("kind") == "corpus"],
           "results": res,
           "skipped": [{k: r[k] for k in ("engine", "n", "what", "reason")}
                       for r in rows if r.get("kind") == "skip"],
           "stages": [{k: r[k] for k in ("stage", "engine", "n", "seconds") if k in r}
                      for r in rows if r.get("kind") == "stage"]}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    def f(v, nd=1):
        return "-" if v is None else f"{v:,.{nd}f}"
    print("== indexing (wall s, CPU s = user+sys, peak RSS, size on disk, input MB/s, chunks/s)")
    print("%-7s %9s %9s %9s %9s %10s %8s %10s" % ("engine", "chunks", "wall s", "CPU s",
                                                 "RSS MB", "size MB", "MB/s", "chunks/s"))
    for d in res:
        i = d.get("index")
        if i:
            print("%-7s %9d %9s %9s %9s %10s %8s %10s" % (
                d["engine"], d["n"], f(i["wall_s"]), f(i["cpu_s"]), f(i["rss_kb"] / 1024, 0),
                f(i["size_bytes"] / 1e6), f(i["mb_s"]), f(i["chunks_s"], 0)))
    for mode, key in (("or", "query"), ("and", "query_and")):
        print()
        print("== queries, %s, BM25 top 10, one thread in process (Sphinx: SphinxQL over loopback);"
              " medians of the passes" % mode.upper())
        print("%-7s %9s %9s %9s %9s %9s %9s %5s %8s" % ("engine", "chunks", "q/s", "p50 ms",
              "p95 ms", "p99 ms", "CPU q/s", "reps", "queries"))
        for d in res:
            q = d.get(key)
            if q:
                print("%-7s %9d %9s %9s %9s %9s %9s %5d %8s" % (
                    d["engine"], d["n"], f(q["qps"], 0), f(q["p50_ms"], 3), f(q["p95_ms"], 3),
                    f(q["p99_ms"], 3), f(q.get("cpu_qps"), 0), q["reps"], q.get("queries")))
    ov = {d["engine"]: d["query"].get("call_overhead_ms") for d in res
          if d.get("query", {}).get("call_overhead_ms") is not None}
    if ov:
        print("   Python's overhead per timed call (an empty query / SELECT 1): " +
              ", ".join(f"{e} {v:.4f} ms" for e, v in ov.items()))
    if doc["skipped"]:
        print()
        for s in doc["skipped"]:
            print("skipped: %s %s at %d: %s" % (s["engine"], s["what"], s["n"], s["reason"]))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "xapian-index" and len(argv) == 5:
        xapian_index(*argv[2:5])
    elif cmd == "fts5-index" and len(argv) == 4:
        fts5_index(*argv[2:4])
    elif cmd == "fts5-run" and len(argv) == 7:
        fts5_run(argv[2], argv[3], argv[4], argv[5], int(argv[6]))
    elif cmd == "report" and len(argv) == 4:
        report(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
