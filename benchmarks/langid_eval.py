"""Language ID accuracy on real text with source-known labels: raw lid.176 beside Thresher's.

The evaluation set is built from translated documentation, where the language is known from the
source, not guessed:

- the crawl (``../shared/data/crawl-sample.warc.gz``): the Debian handbook (26 languages),
  the installation guide (19) and LibreOffice help (8), labelled by the language folder of the URL;
- Debian packages fetched with ``apt-get download`` (Debian's archive is reachable from the
  project's machines): LibreOffice help in Galician, Portuguese and Danish, and translated manual
  pages in Serbian, Norwegian Bokmål, Danish, Brazilian Portuguese and Macedonian: the close
  relatives lid.176 is weak on;
- the translated messages of the programs installed on the machine (``/usr/share/locale/*/LC_MESSAGES/*.mo``,
  read with the standard library's gettext): Croatian, Serbian in Latin script (``sr@latin``),
  Bosnian, Slovenian, Galician, Portuguese, Spanish, Norwegian Bokmål and Nynorsk, Danish; a
  message equal to its English original (untranslated) is left out.

Items are paragraphs in three lengths, short (20-80 characters), medium (80-300) and whole
documents (up to 2,000 characters). Translations are incomplete, so the labels are cleaned without
consulting either model: a paragraph found under more than one language (commands, names, code,
shared leftovers) is left out, as is a paragraph of a translated page that occurs in an English
page or reads as English (English-only function words >= 10% of its words); paragraphs need three
words (Chinese and Japanese excepted) and 60% letters. The set is cached in
``~/.cache/thresher/langid-eval.jsonl``.

    python benchmarks/langid_eval.py [--crawl PATH] [--per-bucket 150] [--rebuild]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import random
import re
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path


DEFAULT_CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "thresher"
PACKAGES = {  # Debian package -> language
    "libreoffice-help-gl": "gl", "libreoffice-help-pt": "pt", "libreoffice-help-da": "da",
    "manpages-sr": "sr", "manpages-nb": "nb", "manpages-da": "da", "manpages-pt-br": "pt", "manpages-mk": "mk",
}
LABELLED_SITES = ("debian-handbook", "installation-guide", "libreoffice-help")
BUCKETS = (("short", 20, 80), ("medium", 80, 300))


def crawl_documents(crawl: str, work: str) -> list[dict]:
    """(site, lang, text) of the crawl's pages whose URL names their language."""
    from filters import extracted_pages  # benchmarks/filters.py (this script's folder is on sys.path)

    from thresher.transforms.lid_models import normalise

    docs = []
    for row in extracted_pages(crawl, work, ("url", "text")):
        parts = row["url"].split("/")
        if len(parts) > 4 and parts[3] in LABELLED_SITES and re.fullmatch(r"[a-z]{2}(?:[-_][A-Za-z]{2})?", parts[4]):
            docs.append({"site": parts[3], "lang": normalise(parts[4]), "text": row["text"], "source": row["url"]})
    return docs


def _groff_text(raw: str) -> str:
    """Manual page source -> paragraphs of plain text (macros dropped, escapes resolved)."""
    paras, cur = [], []
    for line in raw.splitlines():
        if line.startswith((".", "'")):
            if cur:
                paras.append(" ".join(cur))
                cur = []
            m = re.match(r"\.(?:B|I|BI|BR|IR|RB|RI|IB)\s+(.*)", line)
            if m:
                cur.append(m.group(1).replace('"', ""))
            continue
        cur.append(line)
    if cur:
        paras.append(" ".join(cur))
    text = "\n".join(paras)
    text = re.sub(r"\\f(?:\[[^\]]*\]|\(..|.)", "", text)
    text = re.sub(r"\\\(..|\\\[[^\]]*\]", "", text)
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\").replace("\\ ", " ")
    text = re.sub(r"\\.", "", text)
    return text


def package_documents(work: str) -> list[dict]:
    from thresher.transforms.extract import HtmlExtractor

    extract = HtmlExtractor("resiliparse", main_content=True)
    debs = os.path.join(work, "debs")
    os.makedirs(debs, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True, capture_output=True)
    docs = []
    for pkg, lang in PACKAGES.items():
        deb = glob.glob(os.path.join(debs, f"{pkg}_*.deb"))[0]
        root = os.path.join(work, "x", pkg)
        os.makedirs(root, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
        if pkg.startswith("libreoffice-help"):
            for f in sorted(glob.glob(os.path.join(root, "usr/share/libreoffice/help/*/text/**/*.html"), recursive=True)):
                with open(f, encoding="utf-8", errors="replace") as fh:
                    text = extract(fh.read())
                docs.append({"site": pkg, "lang": lang, "text": text, "source": f[len(root):]})
        else:
            for f in sorted(glob.glob(os.path.join(root, "usr/share/man/**/*.gz"), recursive=True)):
                with gzip.open(f, "rt", encoding="utf-8", errors="replace") as fh:
                    text = _groff_text(fh.read())
                docs.append({"site": pkg, "lang": lang, "text": text, "source": f[len(root):]})
    return docs


LOCALES = {"hr": "hr", "sr@latin": "sr", "bs": "bs", "sl": "sl", "gl": "gl", "pt": "pt", "es": "es",
           "nb": "nb", "nn": "nn", "da": "da"}


def locale_documents(root: str = "/usr/share/locale") -> list[dict]:
    """One document per translated message catalogue: its translated messages, one a line."""
    import gettext

    docs = []
    for folder, lang in LOCALES.items():
        for f in sorted(glob.glob(os.path.join(root, folder, "LC_MESSAGES", "*.mo"))):
            if os.path.basename(f).startswith("iso_"):  # lists of names, not sentences
                continue
            try:
                with open(f, "rb") as fh:
                    catalog = gettext.GNUTranslations(fh)._catalog
            except (OSError, UnicodeDecodeError, ValueError):
                continue
            lines = []
            for key, value in catalog.items():
                source = key[1] if isinstance(key, tuple) else key
                text = " ".join(str(value).split())
                if source and text and text != " ".join(str(source).split()) and "%" not in text:
                    lines.append(text)
            if lines:
                docs.append({"site": f"locale:{os.path.basename(f)}", "lang": lang, "text": "\n".join(sorted(lines)),
                             "source": f})
    return docs


def _letters(s: str) -> float:
    return sum(c.isalpha() for c in s) / max(1, len(s))


# Function words found in English and in none of the evaluated languages.
_ENGLISH = frozenset("the and of with that this you your are from which will should can not have has "
                     "when there their been would these".split())


def _reads_as_english(p: str) -> bool:
    """A leftover English paragraph in a translated page (judged without either model)."""
    words = re.findall(r"[a-z]+", p.lower())
    hits = sum(w in _ENGLISH for w in words)
    return hits >= 1 and hits >= 0.1 * len(words)


def build(crawl: str, per_bucket: int, seed: int = 0) -> list[dict]:
    work = tempfile.mkdtemp(prefix="langid-eval-")
    docs = crawl_documents(crawl, work) + package_documents(work) + locale_documents()
    english = defaultdict(set)
    for d in docs:
        if d["lang"] == "en":
            english[d["site"]].update(p.strip() for p in d["text"].splitlines())
    english_any = set().union(*english.values()) if english else set()
    labels = defaultdict(set)  # a paragraph found under several languages is evidence of none
    for d in docs:
        for p in d["text"].splitlines():
            labels[p.strip()].add(d["lang"])
    pools: dict[tuple, list] = defaultdict(list)
    for d in docs:
        paras = [p.strip() for p in d["text"].splitlines() if p.strip()]
        if d["lang"] != "en":
            paras = [p for p in paras if p not in english_any and not _reads_as_english(p)]
        paras = [p for p in paras if _letters(p) >= 0.6 and len(labels[p]) == 1 and len(p.split()) >= 3
                 or (_letters(p) >= 0.6 and len(labels[p]) == 1 and d["lang"] in ("zh", "ja"))]
        for p in paras:
            for name, lo, hi in BUCKETS:
                if lo <= len(p) < hi:
                    pools[(d["lang"], name)].append({"lang": d["lang"], "bucket": name, "text": p, "site": d["site"]})
        body = "\n".join(paras)[:2000]
        if len(body) >= 300:
            pools[(d["lang"], "document")].append({"lang": d["lang"], "bucket": "document", "text": body,
                                                   "site": d["site"]})
    rng = random.Random(seed)
    items = []
    for key in sorted(pools):
        uniq = sorted({json.dumps(x, sort_keys=True) for x in pools[key]})
        rng.shuffle(uniq)
        items.extend(json.loads(x) for x in uniq[:per_bucket])
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--per-bucket", type=int, default=150)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    path = CACHE / "langid-eval.jsonl"
    if args.rebuild or not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        items = build(args.crawl, args.per_bucket)
        path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items), encoding="utf-8")
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    from thresher.transforms.lid_models import LanguageIdentifier

    ours = LanguageIdentifier()
    t0 = time.perf_counter()
    raw = [ours.raw(x["text"])[0][0] if ours.raw(x["text"]) else "" for x in items]
    t_raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    mine = [p.lang if (p := ours.predict(x["text"])) else "" for x in items]
    t_ours = time.perf_counter() - t0

    by_lang: dict[str, Counter] = defaultdict(Counter)
    by_bucket: dict[str, Counter] = defaultdict(Counter)
    confusions: Counter = Counter()
    for x, r, m in zip(items, raw, mine):
        for table, key in ((by_lang, x["lang"]), (by_bucket, x["bucket"]), (by_bucket, "all")):
            table[key]["n"] += 1
            table[key]["raw"] += r == x["lang"]
            table[key]["ours"] += m == x["lang"]
        if m != x["lang"]:
            confusions[(x["lang"], m)] += 1
    print(f"evaluation set: {len(items)} items, {len(by_lang)} languages ({path})")
    print(f"time: raw lid.176 {t_raw:.2f} s, Thresher {t_ours:.2f} s "
          f"({sum(1 for x in items if ours.predict(x['text']) and ours.predict(x['text']).by != 'lid176')} consulted langid)\n")
    print("| language | items | lid.176 | Thresher |")
    print("| -------- | ----: | ------: | -------: |")
    for lang in sorted(by_lang):
        c = by_lang[lang]
        print(f"| {lang:8} | {c['n']:5} | {c['raw'] / c['n']:7.1%} | {c['ours'] / c['n']:8.1%} |")
    print("\n| length   | items | lid.176 | Thresher |")
    print("| -------- | ----: | ------: | -------: |")
    for b in ("short", "medium", "document", "all"):
        c = by_bucket[b]
        if c["n"]:
            print(f"| {b:8} | {c['n']:5} | {c['raw'] / c['n']:7.1%} | {c['ours'] / c['n']:8.1%} |")
    print("\nmost frequent remaining errors (true -> predicted):",
          ", ".join(f"{a}->{b} {n}" for (a, b), n in confusions.most_common(12)))


if __name__ == "__main__":
    main()
