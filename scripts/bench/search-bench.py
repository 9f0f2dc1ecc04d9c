#!/usr/bin/env python3
"""Helpers of scripts/bench/search-bench.sh (the peers' side, and the report).

  search-bench.py xapian-index CHUNKS.jsonl STOPWORDS DB
  search-bench.py xapian-run DB STOPWORDS QUERIES and|or REPS [HITS]
  search-bench.py sphinx-tsv CHUNKS.jsonl OUT.tsv
  search-bench.py overlap HITS_A HITS_B
  search-bench.py swap-windows TIMELINE SWAPS RESULTS.jsonl RATE CONNS ENGINE
  search-bench.py report RESULTS.jsonl OUT.json [FIGS.json]

Xapian gets the chunks search_bench dumps (title, heading path, text, as SAGE
indexes them), analysed by its TermGenerator with the English Snowball stemmer
(stemmed terms only), SAGE's stop words dropped, no positions (SAGE keeps
none); a query is the terms the same TermGenerator makes of the query text,
joined with OP_AND or OP_OR, ranked by BM25Weight(k1 1.2, b 0.75), top 10.
Only get_mset(0, 10) is timed (wall clock; cpu_qps from the thread's CPU time
around the same call). xapian-run prints one JSON line a pass, as
search_bench does; report joins every line the script collected into tables
and a JSON file, and, given FIGS.json, records every pass's figures there
through fig.py (scripts/bench/report.py reads them).
"""
import json
import statistics
import sys
import time


def stopper(path):
    st = __import__("xapian").SimpleStopper()
    with open(path, encoding="utf-8") as f:
        for w in f:
            if w.strip():
                st.add(w.strip())
    return st


def term_generator(stop_path):
    import xapian
    tg = xapian.TermGenerator()
    tg.set_stemmer(xapian.Stem("english"))
    tg.set_stemming_strategy(xapian.TermGenerator.STEM_ALL)
    st = stopper(stop_path)
    tg.set_stopper(st)
    tg.set_stopper_strategy(xapian.TermGenerator.STOP_ALL)
    return tg, st      # the stopper must outlive the generator


def xapian_index(chunks, stop_path, db_path):
    import xapian
    db = xapian.WritableDatabase(db_path, xapian.DB_CREATE_OR_OVERWRITE)
    tg, _st = term_generator(stop_path)
    n = 0
    with open(chunks, encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            doc = xapian.Document()
            tg.set_document(doc)
            tg.index_text_without_positions(c["text"])
            db.replace_document(c["id"] + 1, doc)
            n += 1
    db.commit()
    db.close()
    print(json.dumps({"engine": "xapian", "indexed": n}))


def pct(v, p):
    """Nearest-rank percentile of sorted v, as search_bench computes it."""
    if not v:
        return 0.0
    i = int(p / 100.0 * len(v) + 0.999999)
    return v[min(max(i, 1), len(v)) - 1]


def xapian_run(db_path, stop_path, queries, mode, reps, hits_path):
    import xapian
    db = xapian.Database(db_path)
    enq = xapian.Enquire(db)
    enq.set_weighting_scheme(xapian.BM25Weight(1.2, 0, 1, 0.75, 0.5))
    tg, _st = term_generator(stop_path)
    op = xapian.Query.OP_AND if mode == "and" else xapian.Query.OP_OR
    qs = []
    with open(queries, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            d = xapian.Document()
            tg.set_document(d)
            tg.index_text_without_positions(line.strip())
            terms = [t.term.decode() for t in d.termlist()]
            qs.append(xapian.Query(op, terms) if terms else xapian.Query())
    # The cost of the timing around a call that does no search: an empty query.
    enq.set_query(xapian.Query())
    over = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        enq.get_mset(0, 10)
        over.append(time.perf_counter_ns() - t0)
    overhead_ms = statistics.median(over) / 1e6
    for rep in range(-1, reps):
        lat, matched, cpu = [], 0, 0
        hf = open(hits_path, "w", encoding="utf-8") if rep < 0 and hits_path else None
        for i, q in enumerate(qs):
            enq.set_query(q)
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            m = enq.get_mset(0, 10)
            t1 = time.perf_counter_ns()
            cpu += time.thread_time_ns() - c0
            lat.append((t1 - t0) / 1e6)
            matched += m.get_matches_estimated()
            if hf:
                hf.write(" ".join([str(i)] + [str(x.docid - 1) for x in m]) + "\n")
        if hf:
            hf.close()
        if rep < 0:
            continue
        total = sum(lat)
        lat.sort()
        print(json.dumps({
            "engine": "xapian", "mode": mode, "rep": rep, "queries": len(qs),
            "seconds": round(total / 1e3, 6), "qps": round(len(qs) / (total / 1e3), 1),
            "mean_ms": round(total / len(qs), 4), "p50_ms": round(pct(lat, 50), 4),
            "p95_ms": round(pct(lat, 95), 4), "p99_ms": round(pct(lat, 99), 4),
            "max_ms": round(lat[-1], 4), "mean_total": round(matched / len(qs), 1),
            "call_overhead_ms": round(overhead_ms, 4),
            "cpu_qps": round(len(qs) / (cpu / 1e9), 1)}), flush=True)


def sphinx_tsv(chunks, out):
    """Sphinx's tsvpipe has no escapes: tabs and newlines become spaces
    (separators to its tokenizer either way); ids start at 1."""
    tr = str.maketrans({"\t": " ", "\n": " ", "\r": " ", "\\": " "})
    with open(chunks, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as o:
        for line in f:
            c = json.loads(line)
            o.write(f"{c['id'] + 1}\t{c['text'].translate(tr)}\n")


def overlap(a_path, b_path):
    """Mean overlap@10 of two hit files (query number, then chunk ids)."""
    def load(p):
        with open(p, encoding="utf-8") as f:
            return {int(l.split()[0]): set(l.split()[1:]) for l in f if l.strip()}
    a, b = load(a_path), load(b_path)
    num = [len(a[q] & b.get(q, set())) / max(len(a[q]), len(b.get(q, set())), 1)
           for q in a if a[q] or b.get(q)]
    return round(statistics.mean(num), 3) if num else None


def med(rows, key):
    v = [r[key] for r in rows if key in r]
    return statistics.median(v) if v else None


def fmt(v, nd=2):
    return "-" if v is None else f"{v:,.{nd}f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def report(results, out):
    rows = []
    with open(results, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    by = {}
    for r in rows:
        if r.get("kind") in ("inproc", "net", "wrk", "swap", "steady", "load"):
            by.setdefault((r["kind"], r.get("engine"), r.get("mode"), r.get("test")), []).append(r)
    doc = {"machine": meta.get("machine"), "versions": meta.get("versions"),
           "corpus": meta.get("corpus"), "commands": meta.get("commands"),
           "in_process": {}, "network": {}, "hot_swap": {}}

    def summary(rs, keys):
        return {k: med(rs, k) for k in keys} | {"runs": len(rs)}

    print("== in process: BM25 top 10, one thread, %d queries a pass; medians of %d passes"
          % (med(by.get(("inproc", "sage", "or", None), []), "queries") or 0,
             len(by.get(("inproc", "sage", "or", None), []))))
    print("   timed: sage_search() (query parsing included) vs Enquire.get_mset(0, 10)")
    print("   CPU q/s: from the thread's CPU time around the same call (less disturbed by a busy")
    print("   machine); mean total: matches counted (SAGE's is a lower bound when pruned)")
    print("%-5s %-7s %10s %9s %9s %9s %10s %12s %11s" %
          ("mode", "engine", "q/s", "p50 ms", "p95 ms", "p99 ms", "CPU q/s", "mean total",
           "overlap@10"))
    target = {}
    for mode in ("and", "or"):
        s = summary(by.get(("inproc", "sage", mode, None), []),
                    ("qps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_total", "cpu_qps"))
        x = summary(by.get(("inproc", "xapian", mode, None), []),
                    ("qps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_total", "call_overhead_ms",
                     "cpu_qps"))
        ov = meta.get("overlap", {}).get(f"inproc_{mode}")
        for name, v in (("sage", s), ("xapian", x)):
            print("%-5s %-7s %10s %9s %9s %9s %10s %12s %11s" % (
                mode, name, fmt(v["qps"], 0), fmt(v["p50_ms"], 3), fmt(v["p95_ms"], 3),
                fmt(v["p99_ms"], 3), fmt(v["cpu_qps"], 0), fmt(v["mean_total"], 0),
                fmt(ov, 3) if name == "xapian" else ""))
        r = ratio(s["qps"], x["qps"])
        rc = ratio(s["cpu_qps"], x["cpu_qps"])
        met = r is not None and r >= 1.5 and s["p99_ms"] <= x["p99_ms"]
        print("%-5s sage/xapian q/s %.2fx (CPU %.2fx), p99 %.3f vs %.3f ms: target (>= 1.5x, "
              "p99 no worse) %s" % (mode, r or 0, rc or 0, s["p99_ms"] or 0, x["p99_ms"] or 0,
                                    "met" if met else "MISSED"))
        doc["in_process"][mode] = {"sage": s, "xapian": x, "qps_ratio": r, "cpu_qps_ratio": rc,
                                   "overlap_at_10": ov, "target_met": met}
        target[f"inproc_{mode}"] = met
    xo = med(by.get(("inproc", "xapian", "or", None), []), "call_overhead_ms")
    print("   Xapian's Python/SWIG overhead around get_mset (an empty query): %s ms a call"
          % fmt(xo, 4))

    print()
    print("== network: one client, keep-alive HTTP (sage-searchd) vs a persistent SphinxQL")
    print("   connection (Sphinx searchd), the same C client (net_bench); timed per request from")
    print("   its first byte sent to the last byte of the answer; medians of the passes. SAGE")
    print("   answers JSON with library/path/title/heading per hit (snippets=0), Sphinx id+weight")
    print("   srv CPU: the server process's CPU time (utime + stime) per request")
    print("%-5s %-22s %10s %9s %9s %9s %12s" % ("mode", "server", "q/s", "p50 ms", "p95 ms",
                                                "p99 ms", "srv CPU ms"))
    for mode in ("and", "or"):
        res = {}
        for test in ("single", "single-bm25", "single-snippets"):
            for eng in ("sage", "sphinx"):
                rs = by.get(("net", eng, mode, test), [])
                if not rs:
                    continue
                v = summary(rs, ("qps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors",
                                 "server_cpu_ms"))
                res[f"{eng}/{test}"] = v
                label = {"single": eng, "single-bm25": "sphinx ranker=bm25",
                         "single-snippets": "sage, snippets on"}[test]
                if eng == "sphinx" and test == "single":
                    label = "sphinx bm25a(1.2,0.75)"
                print("%-5s %-22s %10s %9s %9s %9s %12s" % (mode, label, fmt(v["qps"], 0),
                      fmt(v["p50_ms"], 3), fmt(v["p95_ms"], 3), fmt(v["p99_ms"], 3),
                      fmt(v["server_cpu_ms"], 3)))
        s, p = res.get("sage/single"), res.get("sphinx/single")
        if s and p:
            r = ratio(s["qps"], p["qps"])
            met = r is not None and r >= 2
            rc = ratio(p["server_cpu_ms"], s["server_cpu_ms"])
            print("%-5s sage/sphinx single-client q/s %.2fx (server CPU per request, sphinx / sage: %.2f): "
                  "target (>= 2x) %s" % (mode, r or 0, rc or 0, "met" if met else "MISSED"))
            res["server_cpu_ratio"] = rc
            res["qps_ratio"] = r
            res["target_met"] = met
            target[f"single_{mode}"] = met
        res["overlap_at_10"] = meta.get("overlap", {}).get(f"net_{mode}")
        doc["network"][f"single_{mode}"] = res

    print()
    print("== network: 16 concurrent clients: net_bench (16 threads, one connection each) for both,")
    print("   and wrk -t2 -c16 against sage-searchd; client and servers share the machine's cores")
    print("%-5s %-22s %10s %9s %9s %9s %7s %12s" % ("mode", "server", "q/s", "p50 ms", "p99 ms",
                                                     "max ms", "errors", "srv CPU ms"))
    for mode in ("and", "or"):
        res = {}
        for eng, test, label in (("sage", "c16", "sage-searchd"), ("sphinx", "c16", "sphinx searchd"),
                                 ("sage", "wrk", "sage-searchd (wrk)")):
            rs = by.get(("wrk" if test == "wrk" else "net", eng, mode, test), [])
            if not rs:
                continue
            v = summary(rs, ("qps", "p50_ms", "p99_ms", "max_ms", "errors", "server_cpu_ms"))
            res[f"{eng}/{test}"] = v
            print("%-5s %-22s %10s %9s %9s %9s %7s %12s" % (mode, label, fmt(v["qps"], 0),
                  fmt(v["p50_ms"], 3), fmt(v["p99_ms"], 3), fmt(v["max_ms"], 1),
                  fmt(v["errors"], 0), fmt(v["server_cpu_ms"], 3)))
        s, p = res.get("sage/c16"), res.get("sphinx/c16")
        if s and p:
            res["qps_ratio"] = ratio(s["qps"], p["qps"])
            res["server_cpu_ratio"] = ratio(p["server_cpu_ms"], s["server_cpu_ms"])
            print("%-5s sage/sphinx 16-client q/s %.2fx, p99 %.3f vs %.3f ms (server CPU per request, "
                  "sphinx / sage: %.2f)" % (mode, res["qps_ratio"] or 0, s["p99_ms"], p["p99_ms"],
                                           res["server_cpu_ratio"] or 0))
        if res:
            doc["network"][f"c16_{mode}"] = res

    for eng, how in (("sage", "symlink renamed to the other copy"),
                     ("sphinx", "seamless rotation to the other copy, SIGHUP")):
        swaps = sorted(by.get(("swap", eng, None, None), []), key=lambda r: r["n"])
        steady = by.get(("steady", eng, None, None), [])
        load = next((r for r in by.get(("load", eng, "and", "swap"), [])), {})
        if not (swaps and steady):
            continue
        st = steady[0]
        print()
        print("== hot swap, %s: %s req/s of AND queries from %s connections, %d swaps (%s); "
              "%s requests, %s errors in all" % (eng, st["rate"], st["conns"], len(swaps), how,
                                                 load.get("requests", "?"), load.get("errors", "?")))
        print("   steady (outside the swap windows): p50 %.3f, p99 %.3f, max %.3f ms, %d requests"
              % (st["p50_ms"], st["p99_ms"], st["max_ms"], st["requests"]))
        for r in swaps:
            print("   swap %d: start to served %.0f ms; in the window (start -0.5 s .. +1.5 s): "
                  "max %.3f ms (%.2fx the steady max of as many), p99 %.3f ms, %d requests%s"
                  % (r["n"], r["swap_ms"], r["max_ms"], r.get("pause") or 0, r["p99_ms"],
                     r["requests"],
                     "" if r["swap_ok"] else ", SWAP FAILED"))
        worst = max(swaps, key=lambda r: r["max_ms"])
        print("   worst max latency around a swap %.3f ms = %.2fx the steady max of as many requests"
              % (worst["max_ms"], worst.get("pause") or 0))
        doc["hot_swap"][eng] = {"steady": st, "swaps": swaps, "load": load,
                                "worst_max_ms": worst["max_ms"], "worst_pause": worst.get("pause")}
    if doc["hot_swap"]:
        print("   (the windows: requests started from 0.5 s before the swap's start to 1.5 s after")
        print("   it, or 0.5 s after the server served the new copy when that is later)")
    doc["targets_met"] = target
    doc["raw"] = rows
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def record(rows, figs):
    """Every pass's figures, SAGE's next to the peer's, through fig.py."""
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fig
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    corpus = meta.get("corpus") or {}
    on = "Debian-docs %s chunks, %s" % (corpus.get("chunks", "?"),
                                        os.path.basename(corpus.get("queries", "queries")))

    def add(fid, engine, rs, key, what, unit, better):
        v = [r[key] for r in rs if r.get(key) is not None]
        if v:
            fig.add(figs, [fid, engine] + [repr(float(x)) for x in v] +
                    ["--what", what, "--unit", unit, "--better", better])

    def sel(kind, engine, mode, test=None):
        return [r for r in rows if r.get("kind") == kind and r.get("engine") == engine
                and r.get("mode") == mode and r.get("test") == test]

    for mode in ("and", "or"):
        M = mode.upper()
        for eng in ("sage", "xapian"):
            rs = sel("inproc", eng, mode)
            cond = "in process, one thread, BM25 top 10, %s queries, %s" % (M, on)
            add("inproc-qps-" + mode, eng, rs, "qps", "query throughput, " + cond, "q/s", "higher")
            add("inproc-cpu-qps-" + mode, eng, rs, "cpu_qps",
                "queries per CPU second, " + cond, "q/s", "higher")
            for p in ("p50", "p95", "p99"):
                add("inproc-%s-%s" % (p, mode), eng, rs, p + "_ms",
                    "%s latency, %s" % (p, cond), "ms", "lower")
        for eng in ("sage", "sphinx"):
            rs = sel("net", eng, mode, "single")
            cond = ("over the network, 1 client, %s queries, top 10 (sage-searchd HTTP keep-alive, "
                    "Sphinx searchd SphinxQL bm25a), %s" % (M, on))
            add("net1-qps-" + mode, eng, rs, "qps", "query throughput, " + cond, "q/s", "higher")
            for p in ("p50", "p95", "p99"):
                add("net1-%s-%s" % (p, mode), eng, rs, p + "_ms", "%s latency, %s" % (p, cond),
                    "ms", "lower")
            add("net1-server-cpu-ms-" + mode, eng, rs, "server_cpu_ms",
                "server CPU time per request, " + cond, "ms", "lower")
            rs = sel("net", eng, mode, "c16")
            cond = ("over the network, 16 concurrent clients (net_bench), %s queries, top 10, "
                    "client and server on the same cores, %s" % (M, on))
            add("net16-qps-" + mode, eng, rs, "qps", "query throughput, " + cond, "q/s", "higher")
            for p in ("p50", "p95", "p99"):
                add("net16-%s-%s" % (p, mode), eng, rs, p + "_ms", "%s latency, %s" % (p, cond),
                    "ms", "lower")
            add("net16-server-cpu-ms-" + mode, eng, rs, "server_cpu_ms",
                "server CPU time per request, " + cond, "ms", "lower")
        rs = sel("wrk", "sage", mode, "wrk")
        cond = "wrk -t2 -c16 against sage-searchd, %s queries, %s" % (M, on)
        add("wrk16-qps-" + mode, "sage", rs, "qps", "query throughput, " + cond, "q/s", "higher")
        add("wrk16-p99-" + mode, "sage", rs, "p99_ms", "p99 latency, " + cond, "ms", "lower")
    for eng in ("sage", "sphinx"):
        swaps = sorted((r for r in rows if r.get("kind") == "swap" and r.get("engine") == eng),
                       key=lambda r: r["n"])
        steady = [r for r in rows if r.get("kind") == "steady" and r.get("engine") == eng]
        if not (swaps and steady):
            continue
        st = steady[0]
        load = ("under %g req/s of AND queries from %d connections (sage-searchd: symlink renamed; "
                "Sphinx searchd: seamless rotation on SIGHUP), %s" % (st["rate"], st["conns"], on))
        add("swap-window-max-ms", eng, swaps, "max_ms",
            "hot swap: max latency in each swap's window (start -0.5 s .. +1.5 s), " + load,
            "ms", "lower")
        add("swap-steady-max-ms", eng, swaps, "steady_max_ms",
            "hot swap: the max latency as many requests as a swap's window see without a swap "
            "(the steady latencies' 1 - 1/(n+1) quantile), " + load, "ms", "lower")
        add("swap-pause", eng, swaps, "pause",
            "hot swap: max latency in each swap's window over the steady max of as many requests "
            "(1 = no pause to see), " + load, "ratio", "lower")
        add("swap-window-p99-ms", eng, swaps, "p99_ms",
            "hot swap: p99 latency in each swap's window, " + load, "ms", "lower")
        add("swap-steady-p99-ms", eng, steady, "p99_ms",
            "hot swap: steady p99 latency outside the swap windows, " + load, "ms", "lower")
        add("swap-served-ms", eng, swaps, "swap_ms",
            "hot swap: from the swap's start to the new copy served, " + load, "ms", "lower")
        for r in rows:
            if r.get("kind") == "load" and r.get("engine") == eng and r.get("test") == "swap":
                fig.main(["fig.py", "note", figs, "hot swap, %s: %d requests, %d failed, %d swaps "
                          "(%d failed)" % (eng, r["requests"], r["errors"], len(swaps),
                                           sum(not w["swap_ok"] for w in swaps))])
    for k, v in sorted((meta.get("overlap") or {}).items()):
        if v is not None:
            fig.main(["fig.py", "note", figs, "overlap@10 of the top 10s, %s (sage vs %s): %.3f"
                      % (k, "xapian" if k.startswith("inproc") else "sphinx", v)])


def swap_windows(timeline, swaps, out_results, engine):
    """Cuts a load timeline (START_S LATENCY_MS lines) into one window per swap
    (start - 0.5 s .. start + 1.5 s, or to served + 0.5 s when later) and the
    steady rest; appends one JSON line per swap and returns the steady
    latencies. A window's max is set against the max that as many requests see
    without a swap (the steady latencies' 1 - 1/(n + 1) quantile, n the
    window's requests), not against a p99 of many more requests: the max of
    2,000 requests is above their p99 whether a swap pauses or not."""
    lat = []
    with open(timeline, encoding="utf-8") as f:
        for line in f:
            t, ms = line.split()
            lat.append((float(t), float(ms)))
    sw = []
    with open(swaps, encoding="utf-8") as f:
        for line in f:
            n, t0, t1, ok = line.split()
            sw.append((int(n), float(t0), float(t1), ok == "0"))
    wins = [(n, t0 - 0.5, max(t0 + 1.5, t1 + 0.5), t0, t1, ok) for n, t0, t1, ok in sw]
    steady = sorted(ms for t, ms in lat if not any(a <= t <= b for _, a, b, *_ in wins))
    with open(out_results, "a", encoding="utf-8") as o:
        for n, a, b, t0, t1, ok in wins:
            inw = sorted(ms for t, ms in lat if a <= t <= b)
            ref = pct(steady, 100.0 * (1 - 1 / (len(inw) + 1))) if inw and steady else None
            o.write(json.dumps({"kind": "swap", "engine": engine, "n": n,
                                "swap_ms": round((t1 - t0) * 1e3, 1), "swap_ok": ok,
                                "requests": len(inw), "errors": 0 if ok else 1,
                                "max_ms": inw[-1] if inw else None,
                                "steady_max_ms": ref,
                                "pause": inw[-1] / ref if ref else None,
                                "p99_ms": pct(inw, 99) if inw else None}) + "\n")
    return steady


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "xapian-index" and len(argv) == 5:
        xapian_index(*argv[2:5])
    elif cmd == "xapian-run" and len(argv) in (7, 8):
        xapian_run(argv[2], argv[3], argv[4], argv[5], int(argv[6]),
                   argv[7] if len(argv) == 8 else None)
    elif cmd == "sphinx-tsv" and len(argv) == 4:
        sphinx_tsv(argv[2], argv[3])
    elif cmd == "overlap" and len(argv) == 4:
        print(json.dumps(overlap(argv[2], argv[3])))
    elif cmd == "swap-windows" and len(argv) == 8:
        steady = swap_windows(argv[2], argv[3], argv[4], argv[7])
        with open(argv[4], "a", encoding="utf-8") as o:
            o.write(json.dumps({"kind": "steady", "engine": argv[7], "rate": float(argv[5]),
                                "conns": int(argv[6]), "requests": len(steady),
                                "p50_ms": pct(steady, 50), "p99_ms": pct(steady, 99),
                                "max_ms": steady[-1] if steady else None}) + "\n")
    elif cmd == "report" and len(argv) in (4, 5):
        report(argv[2], argv[3])
        if len(argv) == 5:
            with open(argv[2], encoding="utf-8") as f:
                record([json.loads(line) for line in f if line.strip()], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
