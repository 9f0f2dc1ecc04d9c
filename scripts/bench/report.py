#!/usr/bin/env python3
"""Turns one `make bench` run into the benchmark report.

  report.py --build BUILD --out DIR [--started ISO] [--finished ISO] [--git REV]
            [--quick 0|1] [--causes FILE]

Reads what the parts left in BUILD/bench/: run.jsonl (each part's status and
duration, written by run.sh), figures/PART.json (fig.py's files),
scale-bench.json, hnsw-points.jsonl and dense-points.jsonl; writes
DIR/bench/results/DATE.json (everything, with the machine and the package
versions), the plots DIR/bench/plots/*.png (gnuplot) and DIR/BENCHMARKS.md.

Every figure is shown as SAGE's median (min-max over the repetitions) next
to each peer's median from the same run, with the factor between them. SAGE
is "behind" on a figure when a peer's median is better by more than the
tolerance (10 %, the run-to-run spread seen on these shared machines); such
figures are listed first, each with the cause measured for it, taken from
bench/causes.json ({"PART:ID-pattern": "text"}, fnmatch patterns).
"""
import argparse
import datetime
import fnmatch
import glob
import json
import os
import platform
import statistics
import subprocess
import sys

TOLERANCE = 1.10
PEER_PACKAGES = [
    "sqlite3", "libsqlite3-0", "python3-xapian", "xapian-omega", "libxapian30",
    "sphinxsearch", "python3-numpy", "libopenblas0-pthread", "libopenblas0",
    "python3-faiss", "python3-hnswlib", "libcivetweb1", "libzstd1", "wrk",
    "nodejs", "gnuplot-nox", "tesseract-ocr", "poppler-utils",
]
ENGINE_NAMES = {
    "sage": "SAGE", "fts5": "SQLite FTS5", "xapian": "Xapian", "omindex": "Xapian omindex",
    "sphinx": "Sphinx 2.2", "numpy": "numpy+OpenBLAS", "faiss": "FAISS", "hnswlib": "hnswlib",
    "xxhsum": "xxhsum", "sha256sum": "sha256sum",
}


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine():
    cpu = ""
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass
    debian = ""
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "debian": debian}


def versions(build):
    v = {}
    for p in PEER_PACKAGES:
        out = sh("dpkg-query", "-W", "-f=${Status} ${Version}", p)
        if out.startswith("install ok installed "):
            v[p] = out.split()[-1]
    v["sage"] = sh(os.path.join(build, "sage-indexer"), "--version")
    return v


def git_rev(repo):
    rev = sh("git", "-C", repo, "rev-parse", "--short", "HEAD")
    if rev and sh("git", "-C", repo, "status", "--porcelain", "--untracked-files=no"):
        rev += " (with uncommitted changes)"
    return rev


def load_json(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def load_lines(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rows.append(json.loads(line))
    except (OSError, ValueError):
        pass
    return rows


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def fmt(x):
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return "{:,.0f}".format(x)
    if a >= 100:
        return "%.0f" % x
    if a >= 10:
        return "%.1f" % x
    if a >= 1:
        return "%.2f" % x
    return "%.3g" % x


def cell(s):
    if s["n"] > 1 and s["min"] != s["max"]:
        return "%s (%s–%s)" % (fmt(s["median"]), fmt(s["min"]), fmt(s["max"]))
    return fmt(s["median"])


def compare(sage, peer, better):
    """(factor >= 1, verdict) of SAGE against a peer on one figure."""
    a, b = sage["median"], peer["median"]
    if better not in ("lower", "higher") or a <= 0 or b <= 0:
        return None, ""
    good = a <= b if better == "lower" else a >= b
    f = max(a, b) / min(a, b)
    if f < TOLERANCE:
        return f, "on par"
    return f, ("%.2f× better" % f) if good else ("%.2f× behind" % f)


def name(engine):
    return ENGINE_NAMES.get(engine, engine)


class Report:
    def __init__(self, args):
        self.build = args.build
        self.out = args.out
        self.repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        self.bench = os.path.join(args.build, "bench")
        self.quick = args.quick == "1"
        self.started = args.started or datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        self.git = args.git or git_rev(self.repo)
        self.finished = args.finished or datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        self.parts = load_lines(os.path.join(self.bench, "run.jsonl"))
        self.figures = {}
        for p in sorted(glob.glob(os.path.join(self.bench, "figures", "*.json"))):
            self.figures[os.path.basename(p)[:-5]] = load_json(p, None)
        self.scale = load_json(os.path.join(self.bench, "scale-bench.json"), None)
        self.hnsw_points = load_lines(os.path.join(self.bench, "hnsw-points.jsonl"))
        self.dense_points = load_lines(os.path.join(self.bench, "dense-points.jsonl"))
        self.causes = load_json(args.causes or os.path.join(self.repo, "bench", "causes.json"), {})
        self.plots = []
        self.behind = []

    def cause(self, part, fid):
        for pat, text in self.causes.items():
            if fnmatch.fnmatchcase(part + ":" + fid, pat):
                return text
        return "cause not profiled yet"

    # ---- tables --------------------------------------------------------
    def part_order(self):
        seen = [p["part"] for p in self.parts]
        extra = list(self.figures) + (["scale-bench"] if self.scale else [])
        return seen + sorted(k for k in set(extra) if k not in seen)

    def table(self, part, doc):
        figs = [f for f in doc.get("figures", []) if f.get("values")]
        if not figs:
            return []
        peers = []
        for f in figs:
            for e in f["values"]:
                if e != "sage" and e not in peers:
                    peers.append(e)
        head = ["figure", "unit", "SAGE"] + [name(p) for p in peers]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for f in figs:
            vals = {e: summary(v) for e, v in f["values"].items() if v}
            row = [f.get("what") or f["id"], f.get("unit", ""),
                   cell(vals["sage"]) if "sage" in vals else "–"]
            for p in peers:
                if p not in vals:
                    row.append("–")
                    continue
                c = cell(vals[p])
                if "sage" in vals:
                    factor, verdict = compare(vals["sage"], vals[p], f.get("better", ""))
                    if verdict:
                        c += " — SAGE " + verdict
                    if verdict.endswith("behind"):
                        self.behind.append((part, f, p, factor))
                row.append(c)
            lines.append("| " + " | ".join(x.replace("|", "/") for x in row) + " |")
        return lines

    # ---- plots ---------------------------------------------------------
    def gnuplot(self, fname, script, data):
        """Writes DATA files next to the plot and runs SCRIPT; returns the
        plot's path relative to the report, or None when gnuplot fails."""
        pdir = os.path.join(self.out, "bench", "plots")
        os.makedirs(pdir, exist_ok=True)
        for dname, rows in data.items():
            with open(os.path.join(pdir, dname), "w") as f:
                for r in rows:
                    f.write(" ".join(str(x) for x in r) + "\n")
        png = os.path.join(pdir, fname)
        full = ('set terminal pngcairo noenhanced size 900,600 font "DejaVu Sans,11"\n'
                'set output "%s"\nset key below\nset grid\ncd "%s"\n' % (png, pdir)) + script
        r = subprocess.run(["gnuplot"], input=full, text=True, capture_output=True)
        for dname in data:
            os.unlink(os.path.join(pdir, dname))
        if r.returncode != 0:
            print("report: gnuplot failed for %s: %s" % (fname, r.stderr.strip()), file=sys.stderr)
            return None
        return os.path.join("bench", "plots", fname)

    def scale_rows(self):
        if not self.scale:
            return []
        return [r for r in self.scale.get("results", []) if r.get("engine") and r.get("n")]

    def scale_plots(self):
        rows = self.scale_rows()
        engines = []
        for r in rows:
            if r["engine"] not in engines:
                engines.append(r["engine"])
        out = []
        for key, sub, ylabel, fname, title in (
                ("query", "p50_ms", "median latency per query (ms, log)", "scale-query-latency.png",
                 "Query latency vs corpus size (in process, one thread, top 10)"),
                ("index", "chunks_s", "chunks indexed per second (log)", "scale-index-throughput.png",
                 "Indexing throughput vs corpus size")):
            data, plots = {}, []
            for e in engines:
                pts = sorted((r["n"], r[key][sub]) for r in rows
                             if r["engine"] == e and isinstance(r.get(key), dict)
                             and isinstance(r[key].get(sub), (int, float)) and r[key][sub] > 0)
                if not pts:
                    continue
                data[e + ".dat"] = pts
                plots.append('"%s.dat" using 1:2 with linespoints lw 2 title "%s"' % (e, name(e)))
            if not plots:
                continue
            script = ('set title "%s"\nset logscale xy\nset xlabel "chunks in the corpus (log)"\n'
                      'set ylabel "%s"\nset format x "%%.0s%%c"\nplot %s\n'
                      % (title, ylabel, ", ".join(plots)))
            p = self.gnuplot(fname, script, data)
            if p:
                out.append((title, p))
        return out

    def dense_plot(self):
        groups = {}
        for r in self.hnsw_points:
            groups.setdefault(("%s HNSW N=%s d=%s" % (name(r["engine"]), r["n"], r["dim"])), []).append(
                (r["recall"], r["qps"]))
        for r in self.dense_points:
            groups.setdefault(("%s exact N=%s d=%s" % (name(r["engine"]), r["n"], r["dim"])), []).append(
                (r["recall"], r["qps"]))
        if not groups:
            return []
        data, plots = {}, []
        for i, (title, pts) in enumerate(sorted(groups.items())):
            data["d%d.dat" % i] = sorted(pts)
            style = "linespoints" if len(pts) > 1 else "points ps 2"
            plots.append('"d%d.dat" using 1:2 with %s lw 2 title "%s"' % (i, style, title))
        script = ('set title "Dense search: queries/s against recall@10 (one thread)"\n'
                  'set logscale y\nset xrange [:1.01]\nset xlabel "recall@10"\nset ylabel "queries per second (log)"\n'
                  'plot %s\n' % ", ".join(plots))
        p = self.gnuplot("dense-qps-recall.png", script, data)
        return [("Dense search: queries/s against recall@10", p)] if p else []

    # ---- the scale tables ----------------------------------------------
    def scale_tables(self):
        rows = self.scale_rows()
        if not rows:
            return []
        lines = []
        ns = sorted({r["n"] for r in rows})
        engines = []
        for r in rows:
            if r["engine"] not in engines:
                engines.append(r["engine"])
        by = {(r["engine"], r["n"]): r for r in rows}
        for key, sub, label, better in (
                ("index", "wall_s", "indexing wall time (s)", "lower"),
                ("index", "chunks_s", "indexing throughput (chunks/s)", "higher"),
                ("index", "rss_kb", "indexing peak RSS (MB)", "lower"),
                ("index", "size_bytes", "index size (MB)", "lower"),
                ("query", "qps", "queries/s, one thread", "higher"),
                ("query", "p50_ms", "p50 latency (ms)", "lower"),
                ("query", "p99_ms", "p99 latency (ms)", "lower")):
            lines += ["", "**%s**" % label, "",
                      "| chunks | " + " | ".join(name(e) for e in engines) + " |",
                      "|---|" + "---|" * len(engines)]
            for n in ns:
                row = ["{:,}".format(n)]
                s = by.get(("sage", n), {}).get(key, {}).get(sub)
                for e in engines:
                    v = by.get((e, n), {}).get(key, {}).get(sub)
                    if not isinstance(v, (int, float)):
                        row.append("–")
                        continue
                    scale = 1 / 1024 if sub == "rss_kb" else 1e-6 if sub == "size_bytes" else 1
                    c = fmt(v * scale)
                    if e != "sage" and isinstance(s, (int, float)) and s > 0 and v > 0:
                        f, verdict = compare({"median": s}, {"median": v}, better)
                        c += " (SAGE %s)" % verdict
                        if verdict.endswith("behind"):
                            self.behind.append(("scale-bench", {"id": "%s-%s-%d" % (key, sub, n),
                                                                "what": "%s at %s chunks" % (label, "{:,}".format(n))},
                                                e, f))
                    row.append(c)
                lines.append("| " + " | ".join(row) + " |")
        for s in self.scale.get("skipped", []):
            lines.append("")
            lines.append("- %s at %s chunks not run: %s" % (name(s.get("engine", "?")),
                                                            "{:,}".format(s.get("n", 0)), s.get("reason", "")))
        for k in ("notes",):
            for t in self.scale.get(k, []) or []:
                lines.append("- " + t)
        return lines

    # ---- the document --------------------------------------------------
    def write(self):
        os.makedirs(os.path.join(self.out, "bench", "results"), exist_ok=True)
        m, v = machine(), versions(self.build)
        body = []
        titles = {p["part"]: p.get("title", p["part"]) for p in self.parts}
        for part in self.part_order():
            doc = self.figures.get(part)
            if part == "scale-bench":
                lines = self.scale_tables()
                if lines:
                    body += ["", "## " + titles.get(part, "growing corpora")] + lines
                continue
            if not doc:
                continue
            body += ["", "## " + (doc.get("title") or titles.get(part, part))]
            meta = doc.get("meta") or {}
            if meta:
                body += [""] + ["- %s: %s" % (k, meta[k]) for k in meta]
            t = self.table(part, doc)
            if t:
                body += [""] + t
            notes = doc.get("notes") or []
            if notes:
                body += [""] + ["- " + n for n in notes]
        plots = self.scale_plots() + self.dense_plot()

        date = self.started[:10]
        total = sum(p.get("seconds", 0) for p in self.parts)
        md = ["# SAGE benchmarks", "",
              "Generated by `%s` (scripts/bench/run.sh, then scripts/bench/report.py) "
              "from git %s; run started %s, finished %s, %.1f minutes of measuring. "
              "Every figure below comes from this one run; the raw numbers are in "
              "[bench/results/%s.json](bench/results/%s.json)." % (
                  "make bench QUICK=1" if self.quick else "make bench", self.git or "?",
                  self.started, self.finished, total / 60, date, date),
              "",
              "Machine: %s, %s cores, %s GiB RAM, Linux %s, Debian %s. These are shared virtual "
              "machines: absolute numbers move from run to run, so compare SAGE with the peer "
              "measured beside it (the factor), not with another run." % (
                  m["cpu"] or "unknown CPU", m["cores"], m["memory_gib"], m["kernel"], m["debian"]),
              "",
              "How to read the tables: each cell is the median over the repetitions, with the "
              "min–max spread in brackets when there were several; each peer's cell says whether "
              "SAGE is better or behind, and by what factor (ratio of the medians). Within %d %% "
              "counts as on par." % round((TOLERANCE - 1) * 100)]
        if self.quick:
            md += ["", "**QUICK run**: every part at a small size, to check the machinery; the "
                   "figures are not the published ones."]
        md += ["", "## Where SAGE is behind", ""]
        if self.behind:
            # one entry per cause, with every figure it explains under it
            groups = {}
            for part, f, peer, factor in self.behind:
                groups.setdefault(self.cause(part, f["id"]), []).append((part, f, peer, factor))
            for cause, rows in groups.items():
                md.append("- Cause: %s" % cause)
                for part, f, peer, factor in rows:
                    md.append("  - **%s** (%s): %s is %.2f× better" % (
                        f.get("what") or f["id"], part, name(peer), factor))
        else:
            md.append("- nowhere in this run (beyond the %d %% tolerance)." % round((TOLERANCE - 1) * 100))
        if plots:
            md += ["", "## Plots"]
            for title, p in plots:
                md += ["", "![%s](%s)" % (title, p)]
        md += body
        md += ["", "## The run", "", "| part | status | minutes |", "|---|---|---|"]
        for p in self.parts:
            md.append("| %s | %s | %s |" % (p.get("title", p["part"]), p.get("status", "?")
                                            + (" (%s)" % p["why"] if p.get("why") else ""),
                                            "%.1f" % (p["seconds"] / 60) if "seconds" in p else "–"))
        md += ["", "Package versions: " + ", ".join("%s %s" % (k, v[k]) for k in sorted(v)) + "."]
        with open(os.path.join(self.out, "BENCHMARKS.md"), "w", encoding="utf-8") as f:
            f.write("\n".join(md) + "\n")
        result = {"started": self.started, "finished": self.finished, "quick": self.quick,
                  "git": self.git, "machine": m, "versions": v, "parts": self.parts,
                  "figures": self.figures, "scale": self.scale,
                  "hnsw_points": self.hnsw_points, "dense_points": self.dense_points,
                  "behind": [{"part": p, "figure": f["id"], "peer": e, "factor": round(x, 3)}
                             for p, f, e, x in self.behind]}
        with open(os.path.join(self.out, "bench", "results", date + ".json"), "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        print("report: %s, %s, %d plot(s)" % (os.path.join(self.out, "BENCHMARKS.md"),
                                              os.path.join(self.out, "bench", "results", date + ".json"),
                                              len(plots)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--started", default="")
    ap.add_argument("--finished", default="", help="when the last part ended (default: now)")
    ap.add_argument("--git", default="", help="the revision measured (default: the checkout's now)")
    ap.add_argument("--quick", default="0")
    ap.add_argument("--causes", default="", help="causes file (default: bench/causes.json)")
    Report(ap.parse_args()).write()


if __name__ == "__main__":
    main()
