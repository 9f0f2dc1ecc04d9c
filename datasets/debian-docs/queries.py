#!/usr/bin/env python3
"""Draws 500 search queries of 1 to 4 words from the debian-docs corpus.

Queries come from the headings an author wrote: HTML <title> and <h1>-<h3>,
Markdown "#" headings, reStructuredText underlined titles and LaTeX
\\chapter/\\section/\\subsection. They are lowercased, stop words and numbers
dropped, and cut into 1-4 word spans. The choice is deterministic without a
PRNG library: candidates are ordered by sha256(SEED + phrase) and taken round
robin over the packages, so every package contributes, by a fixed quota per
length. Standard library only; the corpus is what datasets/debian-docs/build.sh
writes.

    queries.py [CORPUS] > queries.txt      CORPUS defaults to build/debian-docs
"""

import gzip
import hashlib
import html.parser
import os
import re
import sys

SEED = "sage-debian-docs-1"
# Queries per length: short ones dominate real query logs.
QUOTA = {1: 100, 2: 200, 3: 125, 4: 75}
MAX_READ = 4 << 20

# Snowball's English stop words plus a few words that only make headings
# generic ("introduction", "overview") or are page furniture.
STOP = set("""
a about above after again against all am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here
here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
let's me more most mustn't my myself no nor not of off on once only or other ought our ours ourselves
out over own same shan't she she'd she'll she's should shouldn't so some such than that that's the
their theirs them themselves then there there's these they they'd they'll they're they've this those
through to too under until up very was wasn't we we'd we'll we're we've were weren't what what's when
when's where where's which while who who's whom why why's with won't would wouldn't you you'd you'll
you're you've your yours yourself yourselves
also using use used via e.g i.e etc new see
introduction overview contents table index chapter appendix section part page pages documentation
doc docs manual preface foreword notes note example examples abstract summary references bibliography
acknowledgements acknowledgments license copyright changelog changes readme todo news navigation
previous next topic search quick edit home top back
""".split())

WORD = re.compile(r"[a-z0-9][a-z0-9+#_.-]*[a-z0-9+#]|[a-z]")
NUMBERISH = re.compile(r"^(?:[a-z]\.)?[0-9][0-9.x-]*$")   # "1.2", "f.26"
TITLE_TAIL = re.compile(r"\s+(?:\u2014|\||-{1,2}|\u2013|:)\s+.*$")
TEX_HEADING = re.compile(r"\\(?:chapter|section|subsection)\*?\s*(?:\[[^\]]*\])?\s*\{([^{}]*)\}")
RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
MD_HEADING = re.compile(r"^#{1,3}\s+(.+?)\s*#*\s*$")


class Headings(html.parser.HTMLParser):
    """Collects the text of <title>, <h1>, <h2> and <h3>."""

    TAGS = {"title", "h1", "h2", "h3"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.buf = []
        self.out = []

    def handle_starttag(self, tag, attrs):
        if tag in self.TAGS:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.TAGS and self.depth:
            self.depth -= 1
            if not self.depth:
                self.out.append("".join(self.buf))
                self.buf = []

    def handle_data(self, data):
        if self.depth:
            self.buf.append(data)


def read_text(path):
    """The file's text (gunzipped for .gz), or None if it looks binary."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read(MAX_READ)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_READ)
    except (OSError, EOFError):
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


def headings(path):
    """Heading strings of one file, by its type; [] for other files."""
    name = path[:-3] if path.endswith(".gz") else path
    name = name.lower()
    if name.endswith((".html", ".htm", ".xhtml")):
        kind = "html"
    elif name.endswith((".md", ".markdown")):
        kind = "md"
    elif name.endswith((".rst", ".rst.txt")):
        kind = "rst"
    elif name.endswith((".tex", ".ltx", ".dtx")):
        kind = "tex"
    else:
        return []
    text = read_text(path)
    if text is None:
        return []
    if kind == "html":
        p = Headings()
        try:
            p.feed(text)
            p.close()
        except (AssertionError, ValueError):
            pass
        # "os — Miscellaneous ... — Python 3.11.2 documentation": drop the site name.
        return [TITLE_TAIL.sub("", h.strip()) if " documentation" in h else h for h in p.out]
    if kind == "md":
        out, fence = [], False
        for line in text.splitlines():
            if line.startswith("```"):
                fence = not fence
            elif not fence:
                m = MD_HEADING.match(line)
                if m:
                    out.append(m.group(1))
        return out
    if kind == "rst":
        lines = text.splitlines()
        return [lines[i - 1] for i in range(1, len(lines))
                if RST_UNDERLINE.match(lines[i]) and lines[i - 1].strip()
                and len(lines[i].rstrip()) >= len(lines[i - 1].rstrip())
                and not RST_UNDERLINE.match(lines[i - 1])]
    return TEX_HEADING.findall(text)


def words(heading):
    """Lowercased content words of a heading."""
    h = heading.lower().replace("\u00b6", " ")
    h = re.sub(r"[`*_]{1,2}|\\[a-z]+", " ", h)        # markup, TeX commands
    out = []
    for w in WORD.findall(h):
        w = w.strip(".-")
        if not w or w in STOP or NUMBERISH.match(w) or len(w) > 30:
            continue
        if len(w) == 1:
            continue
        out.append(w)
    return out


def candidates(words_):
    """1-4 word contiguous spans of a heading's content words."""
    for n in range(1, 5):
        for i in range(0, len(words_) - n + 1):
            span = words_[i:i + n]
            if n == 1 and len(span[0]) < 4:
                continue
            if len(set(span)) < n:
                continue
            yield n, " ".join(span)


def key(phrase):
    return hashlib.sha256((SEED + "\0" + phrase).encode()).hexdigest()


def main():
    if len(sys.argv) > 2:
        sys.stderr.write("usage: queries.py [CORPUS]\n")
        return 2
    root = sys.argv[1] if len(sys.argv) == 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "debian-docs")
    if not os.path.isdir(root):
        sys.stderr.write(f"queries.py: no corpus at '{root}' (run datasets/debian-docs/build.sh)\n")
        return 1
    # by_len[n][package] = set of phrases
    by_len = {n: {} for n in QUOTA}
    for pkg in sorted(os.listdir(root)):
        top = os.path.join(root, pkg)
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for fn in sorted(filenames):
                for h in headings(os.path.join(dirpath, fn)):
                    for n, phrase in candidates(words(h)):
                        by_len[n].setdefault(pkg, set()).add(phrase)
    chosen, seen = [], set()
    for n, quota in QUOTA.items():
        queues = {p: sorted(s, key=key) for p, s in sorted(by_len[n].items())}
        taken = 0
        while taken < quota and any(queues.values()):
            for p in sorted(queues):
                if taken == quota:
                    break
                while queues[p]:
                    phrase = queues[p].pop(0)
                    if phrase not in seen:
                        seen.add(phrase)
                        chosen.append(phrase)
                        taken += 1
                        break
        if taken < quota:
            sys.stderr.write(f"queries.py: only {taken} {n}-word queries\n")
            return 1
    chosen.sort(key=key)
    sys.stdout.write("".join(q + "\n" for q in chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
