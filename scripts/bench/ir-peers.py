#!/usr/bin/env python3
"""The peers of scripts/bench/ir-eval.sh: one IR test collection indexed and
queried by Xapian and by SQLite FTS5, the top 1000 of each query written as a
TREC run for the collection's eval.py, as sage-indexer query --trec writes
SAGE's.

  ir-peers.py xapian|fts5 DOCS.jsonl QUERIES.jsonl RUN.txt [STOPWORDS]

Both index title and text together, one document per line of DOCS (as
ir-eval.sh has SAGE do, one chunk per document).
xapian: TermGenerator with the English Snowball stemmer (stemmed terms only),
  STOPWORDS (SAGE's list, search_bench stopwords) dropped when given, no
  positions; a query is the terms the same TermGenerator makes of its text,
  joined with OP_OR, ranked by BM25Weight(k1 1.2, b 0.75), as
  scripts/bench/search-bench.py does.
fts5: a table with tokenize 'porter unicode61 remove_diacritics 2'; a query
  is the OR of its words (runs of letters and digits, each quoted, so no
  punctuation reaches FTS5's query syntax), ranked by bm25() (k1 1.2, b 0.75).
Needs Debian's /usr/bin/python3 (python3-xapian, sqlite3 with FTS5). Prints
one JSON line: engine, documents, queries, index_s, query_s.
"""
import json
import re
import sqlite3
import sys
import time


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def body(d):
    return (d.get("title") or "") + "\n" + (d.get("text") or "")


def xapian_run(docs, queries, out, stop_path):
    import xapian
    t0 = time.perf_counter()
    db = xapian.WritableDatabase("", xapian.DB_BACKEND_INMEMORY)
    tg = xapian.TermGenerator()
    tg.set_stemmer(xapian.Stem("english"))
    tg.set_stemming_strategy(xapian.TermGenerator.STEM_ALL)
    st = xapian.SimpleStopper()
    if stop_path:
        with open(stop_path, encoding="utf-8") as f:
            for w in f:
                if w.strip():
                    st.add(w.strip())
        tg.set_stopper(st)
        tg.set_stopper_strategy(xapian.TermGenerator.STOP_ALL)
    for d in docs:
        doc = xapian.Document()
        tg.set_document(doc)
        tg.index_text_without_positions(body(d))
        doc.set_data(str(d["id"]))
        db.add_document(doc)
    db.commit()
    t1 = time.perf_counter()
    enq = xapian.Enquire(db)
    enq.set_weighting_scheme(xapian.BM25Weight(1.2, 0, 1, 0.75, 0.5))
    with open(out, "w", encoding="utf-8") as o:
        for q in queries:
            d = xapian.Document()
            tg.set_document(d)
            tg.index_text_without_positions(q["text"])
            terms = [t.term.decode() for t in d.termlist()]
            if not terms:
                continue
            enq.set_query(xapian.Query(xapian.Query.OP_OR, terms))
            for rank, m in enumerate(enq.get_mset(0, 1000), 1):
                o.write("%s Q0 %s %d %.6f xapian\n" % (q["id"], m.document.get_data().decode(),
                                                      rank, m.weight))
    return t1 - t0, time.perf_counter() - t1


WORD = re.compile(r"\w+", re.UNICODE)


def fts5_run(docs, queries, out):
    t0 = time.perf_counter()
    con = sqlite3.connect(":memory:")
    con.execute("CREATE VIRTUAL TABLE t USING fts5(body, "
                "tokenize='porter unicode61 remove_diacritics 2')")
    with con:
        con.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)",
                        ((i + 1, body(d)) for i, d in enumerate(docs)))
        con.execute("INSERT INTO t(t) VALUES ('optimize')")
    ids = [str(d["id"]) for d in docs]
    t1 = time.perf_counter()
    with open(out, "w", encoding="utf-8") as o:
        for q in queries:
            words = list(dict.fromkeys(w.lower() for w in WORD.findall(q["text"])))
            if not words:
                continue
            match = " OR ".join('"%s"' % w.replace('"', '""') for w in words)
            rows = con.execute("SELECT rowid, bm25(t) FROM t WHERE t MATCH ? "
                               "ORDER BY bm25(t) LIMIT 1000", (match,))
            for rank, (rowid, score) in enumerate(rows, 1):
                # bm25() is lower for better matches; a run's score is higher
                o.write("%s Q0 %s %d %.6f fts5\n" % (q["id"], ids[rowid - 1], rank, -score))
    con.close()
    return t1 - t0, time.perf_counter() - t1


def main(argv):
    if len(argv) not in (5, 6) or argv[1] not in ("xapian", "fts5"):
        print(__doc__, file=sys.stderr)
        return 2
    engine, docs, queries, out = argv[1], load(argv[2]), load(argv[3]), argv[4]
    if engine == "xapian":
        ix, qs = xapian_run(docs, queries, out, argv[5] if len(argv) == 6 else None)
    else:
        ix, qs = fts5_run(docs, queries, out)
    print(json.dumps({"engine": engine, "documents": len(docs), "queries": len(queries),
                      "index_s": round(ix, 3), "query_s": round(qs, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
