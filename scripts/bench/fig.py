#!/usr/bin/env python3
"""Records benchmark figures for the report (scripts/bench/report.py).

Every part of `make bench` writes what it measured to one file,
$SAGE_BUILD/bench/figures/PART.json, through this script, so that the report
can put each SAGE figure next to the peers' from the same run:

  fig.py add FILE ID ENGINE VALUE... [--what TEXT] [--unit UNIT]
                                      [--better lower|higher]
      appends VALUE... (one per repetition) to figure ID for ENGINE
      ("sage" or a peer's name); WHAT, UNIT and BETTER are kept from the
      first call that gives them.
  fig.py note FILE TEXT       a line printed under the part's table
  fig.py meta FILE KEY VALUE  a fact about the run (corpus, settings)
  fig.py title FILE TEXT      the part's heading

The file: {"title", "meta": {KEY: VALUE}, "notes": [TEXT],
"figures": [{"id", "what", "unit", "better", "values": {ENGINE: [numbers]}}]},
figures in the order they were first added. Several processes never write
one file at once (the parts run one after the other).
"""
import json
import math
import os
import sys
import tempfile


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {"title": "", "meta": {}, "notes": [], "figures": []}


def save(path, doc):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".fig.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def number(s):
    v = float(s)
    if not math.isfinite(v):
        raise ValueError("not a finite number: " + s)
    return v


def add(path, args):
    opts = {"--what": None, "--unit": None, "--better": None}
    pos = []
    i = 0
    while i < len(args):
        if args[i] in opts and i + 1 < len(args):
            opts[args[i]] = args[i + 1]
            i += 2
        else:
            pos.append(args[i])
            i += 1
    if len(pos) < 3:
        raise SystemExit("fig.py add: expected ID ENGINE VALUE...")
    fid, engine, values = pos[0], pos[1], [number(v) for v in pos[2:]]
    if opts["--better"] not in (None, "lower", "higher"):
        raise SystemExit("fig.py add: --better is lower or higher")
    doc = load(path)
    fig = next((f for f in doc["figures"] if f["id"] == fid), None)
    if fig is None:
        fig = {"id": fid, "what": fid, "unit": "", "better": "", "values": {}}
        doc["figures"].append(fig)
    for k in ("what", "unit", "better"):
        if opts["--" + k] is not None and fig[k] in ("", fid):
            fig[k] = opts["--" + k]
    fig["values"].setdefault(engine, []).extend(values)
    save(path, doc)


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    cmd, path, rest = argv[1], argv[2], argv[3:]
    if cmd == "add":
        add(path, rest)
    elif cmd in ("note", "title") and len(rest) == 1:
        doc = load(path)
        if cmd == "note":
            doc["notes"].append(rest[0])
        else:
            doc["title"] = rest[0]
        save(path, doc)
    elif cmd == "meta" and len(rest) == 2:
        doc = load(path)
        doc["meta"][rest[0]] = rest[1]
        save(path, doc)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
