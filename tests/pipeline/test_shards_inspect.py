"""Tokenized shards and `thresher inspect`, end to end on the embedded sample."""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from thresher.pipeline.cli import main
from thresher.pipeline.config import Config
from thresher.pipeline.tools.inspection import build_report, render_html
from thresher.pipeline.engines.run import run
from thresher.transforms.tokenization import default_tokenizer
from thresher.transforms.shards import open_shard, read_manifest, token_arrays
from thresher.transforms.tokenization import tokenizer_from_json

pytestmark = pytest.mark.slow


def run_to(out: Path, **tokenize) -> Path:
    cfg = Config()
    cfg.output = str(out)
    for k, v in tokenize.items():
        setattr(cfg.stages.tokenize, k, v)
    return Path(run(cfg).output)


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    """The sample cut into shards of ~40k tokens."""
    return run_to(tmp_path_factory.mktemp("shards") / "out", shard_tokens=40_000)


def shard_digests(out: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "shards").iterdir())}


def test_shards_round_trip_to_the_tokenizers_own_encoding(small_shards):
    m = read_manifest(str(small_shards / "shards"))
    tok, info = tokenizer_from_json(Path(default_tokenizer()).read_text(), "tokenizer.json")
    assert m.tokenizer["sha256"] == info.sha256 and m.dtype == "uint16" and m.tokenizer["eos_id"] == info.eos_id
    texts = {d["id"]: d["text"] for d in pq.read_table(small_shards / "documents").to_pylist()}
    seen = 0
    for s in m.shards:
        table = open_shard(str(small_shards / "shards" / s.file))
        flat, offsets = token_arrays(table)
        ids = table.column("id").to_pylist()
        for i in range(0, len(ids), 7):
            doc = flat[offsets[i]:offsets[i + 1]]
            assert doc[-1] == info.eos_id
            assert doc[:-1].tolist() == tok.encode(texts[ids[i]], add_special_tokens=False).ids
            assert tok.decode(doc[:-1].tolist()) == tok.decode(tok.encode(texts[ids[i]]).ids)
        seen += len(ids)
    assert seen == m.rows == len(texts)


def test_shard_sizes_follow_the_target_and_the_order_is_shuffled(small_shards):
    m = read_manifest(str(small_shards / "shards"))
    assert len(m.shards) == -(-m.tokens // 40_000) >= 4
    assert max(s.tokens for s in m.shards) < 3 * 40_000
    ids = [i for s in m.shards for i in open_shard(str(small_shards / "shards" / s.file)).column("id").to_pylist()]
    assert ids != sorted(ids)
    urls = [u for s in m.shards for u in open_shard(str(small_shards / "shards" / s.file)).column("url").to_pylist()]
    assert urls != sorted(urls)  # not in crawl order either


def test_shards_are_byte_identical_across_runs_and_workers(small_shards, tmp_path):
    again = run_to(tmp_path / "again", shard_tokens=40_000)
    assert shard_digests(small_shards) == shard_digests(again)
    cfg = Config()
    cfg.output = str(tmp_path / "two")
    cfg.runner.workers = 2
    cfg.stages.tokenize.shard_tokens = 40_000
    two = Path(run(cfg).output)
    assert shard_digests(small_shards) == shard_digests(two)


def test_stats_count_shards(small_shards):
    stats = json.loads((small_shards / "stats.json").read_text())
    m = read_manifest(str(small_shards / "shards"))
    assert stats["output"]["shards"] == len(m.shards)
    assert stats["output"]["shard_tokens"] == m.tokens and stats["output"]["shard_rows"] == m.rows
    assert stats["stages"]["tokenize"]["in"] == stats["stages"]["tokenize"]["kept"] == m.rows
    assert "n_tokens" in pq.read_schema(next((small_shards / "documents").glob("*.parquet"))).names


def test_hugging_face_datasets_reads_the_shards(small_shards):
    import datasets

    files = sorted(str(p) for p in (small_shards / "shards").glob("*.arrow"))
    ds = datasets.concatenate_datasets([datasets.Dataset.from_file(f) for f in files])  # mapped, not copied
    assert len(datasets.load_dataset("arrow", data_files=files, split="train")) == len(ds)
    m = read_manifest(str(small_shards / "shards"))
    assert len(ds) == m.rows
    assert sum(len(t) for t in ds["tokens"]) == m.tokens


def test_inspect_console_json_and_verify(small_shards, capsys):
    assert main(["inspect", str(small_shards), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "Funnel: 841 records read -> 168 kept" in out and "Shards:" in out and "Verify: OK" in out
    assert main(["inspect", str(small_shards), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["shards"]["tokens"] == read_manifest(str(small_shards / "shards")).tokens
    assert report["documents"]["sections"]["127.0.0.1/debian-handbook"] > 10


def test_verify_fails_on_a_corrupted_shard_and_names_it(small_shards, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(small_shards, broken)
    victim = sorted((broken / "shards").glob("*.arrow"))[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x5A
    victim.write_bytes(bytes(data))
    assert main(["inspect", str(broken), "--verify"]) == 1
    err = capsys.readouterr().err
    assert f"shards/{victim.name}" in err and "sha256" in err


def test_tokenizer_train_command(small_shards, tmp_path):
    out = tmp_path / "tok.json"
    assert main(["tokenizer", "train", str(small_shards), "--vocab-size", "800", "--max-docs", "50",
                 "--output", str(out)]) == 0
    tok, info = tokenizer_from_json(out.read_text(), out.name)
    assert info.vocab_size <= 800 and len(info.special_tokens) == 261 and info.eos_token == "<|endoftext|>"


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_report_sections_in_a_browser_with_a_screenshot(small_shards, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium where apt works)")
    page = tmp_path / "report.html"
    assert main(["inspect", str(small_shards), "--html", str(page)]) == 0
    html = page.read_text()
    assert "http://" not in html.split('<script id="report-data"')[0] and "<link" not in html  # no network
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout

    def section(name):
        start = dom.index(f'<section id="{name}"')
        return dom[start:dom.index("</section>", start)]

    # every section exists only if the page's script ran and filled it
    funnel = section("funnel")
    for part in ("kept", "dropped"):
        assert funnel.count(f'class="seg {part}"') >= 3, part
    assert ">gopher_quality<" in funnel and ">tokenize<" in funnel
    stats = json.loads((small_shards / "stats.json").read_text())
    not_pages = stats["totals"]["by_reason"]["ingest.not_response"]
    assert f">{stats['stages']['ingest']['in'] - not_pages:,}<" in funnel  # WARC non-pages left out
    languages = section("languages")
    assert ">en<" in languages and "gopher_quality.gopher_below_alpha_threshold" in languages
    examples = section("examples")
    assert examples.count('class="example"') >= 9 and examples.count('class="fired"') >= 6
    assert 'class="fired-signal">gopher_quality_alpha_words 0.' in examples  # the signal that fired, highlighted
    assert "Largest clusters" in section("dedup")
    assert section("time").count('class="seg bar"') >= 10
    lengths = section("lengths")
    assert lengths.count("<rect") >= 20 and "characters (log-spaced bins)" in lengths
    tokens = section("tokens")
    assert "shard-00000.arrow" in tokens and tokens.count("<rect") >= 10 and "Tokens per language" in tokens
    assert "tokenize:" in section("config") and "wall time" in section("summary")
    # document texts are shown as text, never as markup
    report = build_report(str(small_shards))
    first = next(iter(report["examples"].values()))[0]
    first["text"] = '<b id="injected">x</b></script><i id="broken-out">'
    page.write_text(render_html(report))
    dom2 = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120).stdout
    assert '&lt;b id="injected"&gt;' in dom2 and 'id="injected"' not in dom2.replace('&lt;b id="injected"', "")
    assert 'id="broken-out"' not in dom2.replace('&lt;i id="broken-out"', "") and 'class="example"' in dom2
    page.write_text(html)
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1280,6000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    keep = os.environ.get("THRESHER_TEST_ARTIFACTS")  # CI keeps the screenshot to look at
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, "inspect-report.png"))


def test_compare_two_runs_console_json_and_html(small_shards, tmp_path, capsys):
    cfg = Config()
    cfg.output = str(tmp_path / "no-c4")
    cfg.stages.tokenize.shard_tokens = 40_000
    cfg.stages.c4.enabled = False
    other = run(cfg).output
    assert main(["inspect", str(small_shards), "--compare", other]) == 0
    text = capsys.readouterr().out
    assert "drops that changed:" in text and "c4.curly_bracket" in text
    assert main(["inspect", str(small_shards), "--compare", other, "--json"]) == 0
    c = json.loads(capsys.readouterr().out)["compare"]
    d = c["documents"]
    kept_a = stats_kept(small_shards)
    assert d["both"] + d["only_a"] == kept_a and d["both"] + d["only_b"] == stats_kept(Path(other))
    assert d["only_b"] > len(d["only_b_examples"]) > 0
    # the console says the examples are a sample of them, not all (it listed 5 under "only by B 6")
    assert f"{len(d['only_b_examples'])} of the {d['only_b']:,} kept only by B, picked by a seeded hash" in text
    why = d["only_b_dropped_in_a_by"]
    assert max(why, key=why.get).startswith("c4.")  # B kept them because it has no c4 stage
    assert all(e["a"] and e["a"].startswith(tuple(k.split(".")[0] for k in why)) for e in d["only_b_examples"])
    c4 = next(r for r in c["funnel"] if r["stage"] == "c4")
    assert c4["in"][1] is None and c4["kept"][0] is not None
    page = tmp_path / "cmp.html"
    assert main(["inspect", str(small_shards), "--compare", other, "--html", str(page)]) == 0
    assert '"compare"' in page.read_text()
    browser = _chromium()
    if browser:
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        assert "Thresher comparison" in dom and 'class="seg b"' in dom and "Kept only by B" in dom


def stats_kept(run_dir: Path) -> int:
    return json.loads((run_dir / "stats.json").read_text())["totals"]["kept"]
