import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the [train] extra


@pytest.fixture(scope="session")
def sample_shards(tmp_path_factory) -> Path:
    """A real run of the default recipe on the embedded sample, cut into ~8 shards."""
    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run

    cfg = Config()
    cfg.output = str(tmp_path_factory.mktemp("train-data") / "run")
    cfg.stages.tokenize.shard_tokens = 20_000
    return Path(run(cfg).output)


@pytest.fixture
def other_tokenizer_shards(sample_shards, tmp_path) -> Path:
    """The same shards under a manifest that names another tokenizer."""
    import json

    out = tmp_path / "other"
    shutil.copytree(sample_shards / "shards", out / "shards")
    m = json.loads((out / "shards" / "manifest.json").read_text())
    m["tokenizer"]["sha256"] = "0" * 64
    (out / "shards" / "manifest.json").write_text(json.dumps(m))
    return out
