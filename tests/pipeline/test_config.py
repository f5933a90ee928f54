import pytest
import yaml

from thresher.pipeline.config import Config, ConfigError, apply_overrides, from_dict, load


def test_defaults_are_valid_and_round_trip():
    cfg = Config().validate()
    again = from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg


@pytest.mark.parametrize(
    "data,key",
    [
        ({"outptu": "x"}, "outptu"),
        ({"stages": {"extract": {"backnd": "x"}}}, "stages.extract.backnd"),
        ({"stages": {"extrct": {}}}, "stages.extrct"),
        ({"write": {"document_shards": -1}}, "write.document_shards"),
        ({"write": {"shard_input_mb": 0}}, "write.shard_input_mb"),
        ({"write": {"document_shards": "4"}}, "write.document_shards"),
        ({"write": {"rejected_sample": 1.5}}, "write.rejected_sample"),
        ({"stages": {"extract": {"backend": "lynx"}}}, "stages.extract.backend"),
        ({"stages": {"extract": {"enabled": "yes"}}}, "stages.extract.enabled"),
        ({"runner": {"workers": 0}}, "runner.workers"),
        ({"stages": {"ingest": {"keep_status": ["200"]}}}, "stages.ingest.keep_status[0]"),
        ({"stages": {"ingest": {"split_bytes": 10}}}, "stages.ingest.split_bytes"),
    ],
)
def test_mistakes_name_the_key(data, key):
    with pytest.raises(ConfigError) as e:
        from_dict(data)
    assert f"'{key}'" in str(e.value)


def test_single_values_where_lists_are_expected():
    cfg = from_dict({"input": "a.warc.gz", "stages": {"ingest": {"keep_status": 200}}})
    assert cfg.input == ["a.warc.gz"] and cfg.stages.ingest.keep_status == [200]


def test_load_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("output: out\nstages:\n  extract:\n    backend: trafilatura\n")
    cfg = load(str(p))
    assert cfg.output == str(tmp_path / "out") and cfg.stages.extract.backend == "trafilatura"  # its folder's


def test_yaml_cannot_construct_objects(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("output: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(str(p))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(str(tmp_path / "nope.yaml"))
    p = tmp_path / "empty.yaml"
    p.write_text("")
    assert load(str(p)) == Config()
    p.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load(str(p))


def test_a_misspelt_key_is_named_with_the_closest_known_one():
    with pytest.raises(ConfigError, match=r"unknown config key 'stages.gopher_quality.min_doc_wordz' "
                                          r"\(did you mean 'min_doc_words'\?\)"):
        from_dict({"stages": {"gopher_quality": {"min_doc_wordz": 80}}})
    with pytest.raises(ConfigError, match=r"unknown config key 'outptu' \(did you mean 'output'\?\)"):
        from_dict({"outptu": "x"})
    with pytest.raises(ConfigError, match=r"unknown config key 'stages.gopher_qualty' \(did you mean 'gopher_quality'\?\)"):
        from_dict({"stages": {"gopher_qualty": {}}})


def test_yamls_unquoted_no_is_explained(tmp_path):
    """YAML 1.1 reads `no` as false: the error says so, and that Norwegian is nb."""
    path = tmp_path / "no.yaml"
    path.write_text("stages:\n  langid:\n    keep: [en, no]\n")
    with pytest.raises(ConfigError) as e:
        load(str(path))
    msg = str(e.value)
    assert "stages.langid.keep[1]" in msg and "unquoted no" in msg and "quote the value" in msg and "nb" in msg
    path.write_text("stages:\n  gopher_quality:\n    languages:\n      no: {min_doc_words: 40}\n")
    with pytest.raises(ConfigError, match="YAML read an unquoted no, off or false as false"):
        load(str(path))
    path.write_text('stages:\n  langid:\n    keep: [en, "no"]\n')  # quoted: lid.176's "no" is written nb here
    with pytest.raises(ConfigError, match=r"stages.langid.keep\[1\].*'no' is written 'nb' here"):
        load(str(path))
    path.write_text("stages:\n  langid:\n    keep: [en, nb]\n")
    assert load(str(path)).stages.langid.keep == ["en", "nb"]


def test_relative_paths_in_a_config_file_are_relative_to_its_folder(tmp_path, monkeypatch):
    recipes = tmp_path / "recipes"
    (recipes / "lists").mkdir(parents=True)
    (recipes / "lists" / "adult").write_text("example.com\n")
    (recipes / "r.yaml").write_text(
        "input: [../data/*.jsonl, /abs/x.warc.gz, gs://bucket/y.jsonl]\n"
        "output: ../runs/r1\n"
        "stages:\n"
        "  decontaminate: {benchmarks: [{name: he, path: benchmarks/he.jsonl, fields: [prompt]}]}\n"
        "  quality_classifier: {model: models/q.bin, models: [{name: b, model: b.bin}]}\n"
        "  tokenize: {tokenizer: ''}\n"
        "  urlfilter: {domain_lists: [lists/adult]}\n")
    monkeypatch.chdir(tmp_path / "..")  # anywhere but the recipe's folder
    cfg = load(str(recipes / "r.yaml"))
    assert cfg.input == [str(tmp_path / "data" / "*.jsonl"), "/abs/x.warc.gz", "gs://bucket/y.jsonl"]
    assert cfg.output == str(tmp_path / "runs" / "r1")
    assert cfg.stages.decontaminate.benchmarks[0].path == str(recipes / "benchmarks" / "he.jsonl")
    assert cfg.stages.quality_classifier.model == str(recipes / "models" / "q.bin")
    assert cfg.stages.quality_classifier.models[0].model == str(recipes / "b.bin")
    assert cfg.stages.tokenize.tokenizer == ""  # empty: the shipped default, not a folder
    assert cfg.stages.urlfilter.domain_lists == [str(recipes / "lists" / "adult")]
    # the command line's paths stay relative to the current folder
    assert apply_overrides(cfg, output="here").output == "here"
