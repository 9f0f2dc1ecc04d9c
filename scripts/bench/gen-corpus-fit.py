#!/usr/bin/python3
"""Fits the synthetic-corpus model of scripts/bench/gen_corpus.c on a real
corpus: the chunk texts SAGE indexed (search_bench dump of its index), the
stop words the indexer drops and a file of real queries. Writes the model, a
small TSV that gen_corpus reads, and prints the statistics it measured.

  gen-corpus-fit.py CHUNKS.jsonl STOPWORDS QUERIES MODEL.tsv [K]

Words are runs of Unicode letters and digits, lowercased. The model keeps
  - the K most frequent real words with their counts (the head),
  - a tail of made-up words past rank K drawn from a power law p(r) ~ r^-s
    on [K+1, RMAX], holding the share of the tokens the real words past rank
    K hold; s is the value whose expected vocabulary growth best matches the
    real corpus's (distinct words after n tokens, chunks in a random order)
    at n = T/64 .. T, so vocabulary keeps growing with N as Heaps' law says,
  - histograms of the words per chunk (heading and text, as one body), per
    title and per query (1-4, from the real queries), the mean run of
    chunks that share a title, and the bytes between words (punctuation),
so that gen_corpus needs nothing else. Only numpy and the standard library.
"""
import json
import re
import sys

import numpy as np

WORD = re.compile(r"[^\W_]+")
RMAX = 1 << 31
MAX_BODY = 400          # words per chunk, the histogram's last bin
MAX_TITLE = 16


def expected_vocab(n, head_p, k, tail_mass, s):
    """Expected distinct words among n tokens drawn from the model."""
    v = np.sum(-np.expm1(-n * head_p))
    # tail: continuous ranks on [k, RMAX], density tail_mass * r^-s / z
    r = np.geomspace(k, RMAX, 4000)
    if abs(s - 1) < 1e-9:
        z = np.log(RMAX / k)
    else:
        z = (RMAX ** (1 - s) - k ** (1 - s)) / (1 - s)
    p = tail_mass * r ** -s / z
    f = -np.expm1(-n * p)
    v += np.sum((f[1:] + f[:-1]) / 2 * np.diff(r))
    return v


def main(argv):
    if len(argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    chunks_path, stop_path, queries_path, out_path = argv[1:5]
    k = int(argv[5]) if len(argv) == 6 else 20000
    with open(stop_path, encoding="utf-8") as f:
        stop = {w.strip() for w in f if w.strip()}
    ids = {}
    counts = []
    per_chunk = []             # word ids of each chunk, for the Heaps curve
    body_len, title_len, chunk_bytes = [], [], []
    word_bytes = sep_bytes = gaps = 0
    runs, run, last_title = [], 0, None
    with open(chunks_path, encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"]
            title, _, body = text.partition("\n")
            if title != last_title:
                if run:
                    runs.append(run)
                run, last_title = 0, title
            run += 1
            tw = WORD.findall(title.lower())
            bw = WORD.findall(body.lower())
            title_len.append(len(tw))
            body_len.append(len(bw))
            chunk_bytes.append(len(text.encode("utf-8")))
            # bytes between the body's words: its length less the words'
            bl = len(body.encode("utf-8"))
            wl = sum(len(w.encode("utf-8")) for w in bw)
            word_bytes += wl
            if len(bw) > 1:
                sep_bytes += bl - wl
                gaps += len(bw) - 1
            a = []
            for w in tw + bw:
                i = ids.get(w)
                if i is None:
                    i = ids[w] = len(counts)
                    counts.append(0)
                counts[i] += 1
                a.append(i)
            per_chunk.append(np.array(a, dtype=np.int32))
    if run:
        runs.append(run)
    counts = np.array(counts, dtype=np.int64)
    words = np.array(list(ids.keys()), dtype=object)
    total = int(counts.sum())
    order = np.argsort(-counts, kind="stable")
    sc = counts[order]
    vocab = len(sc)
    k = min(k, vocab)
    head_p = sc[:k] / total
    tail_mass = float(sc[k:].sum() / total)

    # Zipf exponent of the real rank-frequency curve (least squares on
    # log-log, ranks 10..10,000 and K..the last word seen 3 times)
    def zipf(lo, hi):
        r = np.arange(lo, hi + 1)
        return float(-np.polyfit(np.log(r), np.log(sc[lo - 1:hi]), 1)[0])
    s_head = zipf(10, min(10000, vocab))
    last3 = int(np.searchsorted(-sc, -3, side="right"))
    s_tail_rf = zipf(k, last3) if last3 > k + 10 else None

    # Heaps: distinct words after n tokens, chunks in a random order
    rng = np.random.default_rng(1)
    seq = np.concatenate([per_chunk[i] for i in rng.permutation(len(per_chunk))])
    first = np.sort(np.unique(seq, return_index=True)[1])
    ns = np.array([total >> sh for sh in range(6, -1, -1)])
    vs = np.searchsorted(first, ns, side="left")
    beta, logk = np.polyfit(np.log(ns), np.log(vs), 1)

    # the tail's exponent: its expected vocabulary growth against the real one
    grid = np.arange(1.0, 3.0, 0.005)
    err = [np.sum((np.log([expected_vocab(n, head_p, k, tail_mass, s) for n in ns]) -
                   np.log(vs)) ** 2) for s in grid]
    s_tail = float(grid[int(np.argmin(err))])
    model_v = [expected_vocab(n, head_p, k, tail_mass, s_tail) for n in ns]

    with open(queries_path, encoding="utf-8") as f:
        qlen = [min(len(WORD.findall(q.lower())), 4) for q in f if WORD.search(q)]
    qlen = [q for q in qlen if q > 0]

    bl = np.minimum(np.array(body_len), MAX_BODY)
    tl = np.minimum(np.array(title_len), MAX_TITLE)
    cb = np.array(chunk_bytes)
    stats = {
        "chunks": len(per_chunk), "tokens": total, "vocabulary": vocab,
        "zipf_s_ranks_10_10000": round(s_head, 3),
        "zipf_s_ranks_K_last3": round(s_tail_rf, 3) if s_tail_rf else None,
        "heaps_k": round(float(np.exp(logk)), 2), "heaps_beta": round(float(beta), 3),
        "heaps_points": [[int(n), int(v), int(round(m))] for n, v, m in zip(ns, vs, model_v)],
        "chunk_bytes_mean": round(float(cb.mean()), 1), "chunk_bytes_median": float(np.median(cb)),
        "chunk_bytes_p99": float(np.percentile(cb, 99)),
        "body_words_mean": round(float(np.mean(body_len)), 1),
        "body_words_median": float(np.median(body_len)),
        "title_words_mean": round(float(np.mean(title_len)), 2),
        "word_bytes_mean": round(word_bytes / max(total, 1), 2),
        "chunks_per_title_mean": round(float(np.mean(runs)), 2),
        "head_share": round(1 - tail_mass, 4),
    }
    with open(out_path, "w", encoding="utf-8") as o:
        o.write("# SAGE synthetic-corpus model: scripts/bench/gen-corpus-fit.py, read by "
                "scripts/bench/gen_corpus.c\n")
        o.write("# stats\t" + json.dumps(stats, separators=(",", ":")) + "\n")
        o.write(f"param\tk\t{k}\n")
        o.write(f"param\ttail_mass\t{tail_mass:.6f}\n")
        o.write(f"param\ttail_s\t{s_tail:.4f}\n")
        o.write(f"param\ttail_rmax\t{RMAX}\n")
        o.write(f"param\tsep_bytes\t{sep_bytes / max(gaps, 1):.4f}\n")
        o.write(f"param\tchunks_per_title\t{np.mean(runs):.3f}\n")
        for name, h, lo in (("body", np.bincount(bl), 0), ("title", np.bincount(tl), 0),
                            ("query", np.bincount(qlen), 1)):
            for n in range(lo, len(h)):
                if h[n]:
                    o.write(f"{name}\t{n}\t{int(h[n])}\n")
        for i in range(k):
            w = words[order[i]]
            o.write(f"word\t{w}\t{int(sc[i])}\t{int(w in stop)}\n")
    stats["tail_s"] = s_tail
    stats["sep_bytes"] = round(sep_bytes / max(gaps, 1), 3)
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
