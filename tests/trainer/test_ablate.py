"""`thresher ablate` end to end on the embedded sample: two recipes, the tiny model, a common
held-out evaluation set; then rerun, which finds everything done."""

import json

import pytest

from thresher.pipeline.cli import main

pytestmark = pytest.mark.slow


def test_ablate_two_recipes_then_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as docs/training.md writes them
    (tmp_path / "default.yaml").write_text("stages:\n  tokenize:\n    shard_tokens: 40000\n")
    (tmp_path / "no-gopher.yaml").write_text(
        "stages:\n  gopher_repetition:\n    enabled: false\n  gopher_quality:\n    enabled: false\n"
        "  tokenize:\n    shard_tokens: 40000\n")
    out = tmp_path / "ablation"
    argv = ["ablate", "default.yaml", "no-gopher.yaml", "--output", "ablation",
            "--tokens", "30000", "--seq-len", "64", "--batch-size", "8", "--evals", "3", "--holdout", "0.1",
            "--eval-batches", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    table = printed.out
    assert "recipe" in table and "default" in table and "no-gopher" in table and "lowest eval loss:" in table
    res = json.loads((out / "ablation.json").read_text())
    rows = {r["recipe"]: r for r in res["rows"]}
    assert rows["no-gopher"]["documents"] > rows["default"]["documents"]  # the Gopher filters drop documents
    for r in rows.values():
        assert [s for s, _ in r["eval_curve"]] == [19, 38, 57]  # 58 steps of 8 x 64 tokens, 3 evaluations
        assert 5.0 < r["eval_loss"] < 9.5 and r["eval_curve"][-1][1] < r["eval_curve"][0][1]
    assert rows["no-gopher"]["differences"] == {"stages.gopher_quality.enabled": False,
                                                "stages.gopher_repetition.enabled": False}
    # the evaluation set is the held-out share no recipe trained on
    eval_stats = json.loads((out / "eval" / "stats.json").read_text())
    run_stats = json.loads((out / "runs" / "default" / "stats.json").read_text())
    held = eval_stats["stages"]["holdout"]["kept"]
    assert held > 0 and run_stats["stages"]["holdout"]["dropped"] == {"held_out": held}
    assert eval_stats["stages"]["holdout"]["in"] == run_stats["stages"]["holdout"]["in"]
    assert "gopher_quality" not in eval_stats["stages"]  # extracted, not filtered
    page = (out / "ablation.html").read_text()
    assert page.count('class="curve"') == 2 and "stages.gopher_quality.enabled" in page
    # an interrupted (here: finished) ablation continues: nothing is curated or trained again
    assert main(argv) == 0
    again = capsys.readouterr()
    assert again.err.count("curated already") == 2 and again.err.count("trained already") == 2
    assert json.loads((out / "ablation.json").read_text())["rows"] == res["rows"]
