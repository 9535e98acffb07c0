"""Turns unpacked Debian packages into the text benchmark's null corpus (see
fetch-text-corpus.sh). Deterministic: files are read in sorted order."""
import glob
import html
import json
import os
import re
import sys
from html.parser import HTMLParser

root, out = sys.argv[1], sys.argv[2]


class Paragraphs(HTMLParser):
    """Collects the text of paragraphs (<p>, or DocBook's <div class="para">), no listings."""

    def __init__(self):
        super().__init__()
        self.stack = []  # open tags while inside a paragraph
        self.cur = []
        self.paras = []

    def handle_starttag(self, tag, attrs):
        if self.stack:
            if tag in ("div", "p", "pre"):
                self.stack.append(tag)
            return
        if tag == "p" or (tag == "div" and ("class", "para") in attrs):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if self.stack and tag == self.stack[-1]:
            self.stack.pop()
            if not self.stack:
                t = re.sub(r"\s+", " ", "".join(self.cur)).strip()
                if len(t.split()) >= 8:
                    self.paras.append(t)
                self.cur = []

    def handle_data(self, data):
        if self.stack and "pre" not in self.stack:
            self.cur.append(data)


def html_paragraphs(pattern):
    paras = []
    for f in sorted(glob.glob(os.path.join(root, pattern))):
        p = Paragraphs()
        with open(f, encoding="utf-8", errors="replace") as fh:
            p.feed(fh.read())
        paras.extend(p.paras)
    return paras


def group(paras, words):
    """Consecutive paragraphs joined (blank line) into documents of about `words` words."""
    docs, cur, n = [], [], 0
    for p in paras:
        cur.append(p)
        n += len(p.split())
        if n >= words:
            docs.append("\n\n".join(cur))
            cur, n = [], 0
    return docs


rows = {}
rows["prose"] = group(html_paragraphs("usr/share/doc/debian-handbook/html/en-US/*.html"), 220)
rows["reference"] = group(html_paragraphs("usr/share/debian-reference/*.en.html"), 220)

# Python documentation sources (reStructuredText: prose with code samples).
rst = []
for f in sorted(glob.glob(os.path.join(root, "usr/share/doc/python3.11/html/_sources/**/*.txt"), recursive=True)):
    with open(f, encoding="utf-8", errors="replace") as fh:
        blocks = [b.strip() for b in fh.read().split("\n\n")]
    rst.extend(b for b in blocks if len(b.split()) >= 8)
rows["python-docs"] = group(rst, 220)

# Code: the Python standard library, in chunks of about 60 lines.
code = []
for f in sorted(glob.glob(os.path.join(root, "usr/lib/python3.11/**/*.py"), recursive=True)):
    if not os.path.isfile(f):
        continue
    with open(f, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    for i in range(0, len(lines) - 30, 60):
        chunk = "\n".join(lines[i : i + 60]).strip()
        if len(chunk) > 400:
            code.append(chunk)
rows["code"] = code

# Fortunes: each one on its own (short texts, quotes, verse, dialogue).
fortunes = []
for f in sorted(glob.glob(os.path.join(root, "usr/share/games/fortunes/*"))):
    if f.endswith(".dat") or f.endswith(".u8") or os.path.isdir(f) or os.path.islink(f):
        continue
    with open(f, encoding="utf-8", errors="replace") as fh:
        for item in fh.read().split("\n%\n"):
            t = item.strip()
            if len(t.split()) >= 30:
                fortunes.append(t)
rows["fortunes"] = fortunes

os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "null.jsonl"), "w", encoding="utf-8") as fh:
    for row, docs in rows.items():
        for i, d in enumerate(docs):
            fh.write(json.dumps({"id": f"{row}-{i}", "row": row, "text": d}) + "\n")
# Long documents for localisation: 2,000 words of handbook prose each.
with open(os.path.join(out, "long.jsonl"), "w", encoding="utf-8") as fh:
    for i, d in enumerate(group(html_paragraphs("usr/share/doc/debian-handbook/html/en-US/*.html"), 2000)):
        fh.write(json.dumps({"id": f"long-{i}", "text": d}) + "\n")
for row, docs in rows.items():
    print(f"{row}: {len(docs)} documents", file=sys.stderr)
