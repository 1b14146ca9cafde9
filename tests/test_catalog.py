"""The preset catalog: names, lookup errors, local directories, parameter counts vs published."""
import dataclasses
import json
import subprocess
import sys

import pytest

from edgebench.errors import UserError
from edgebench.models import catalog

REQUIRED = {
    "transformer": ["qwen2.5-0.5b", "qwen2.5-1.5b", "llama-3.2-1b", "phi-3-mini-128k", "tinyllama-1.1b"],
    "ssm": ["mamba-130m", "mamba-370m", "mamba-790m", "mamba-1.4b", "mamba-2.8b", "mamba2-130m",
            "mamba2-370m", "mamba2-780m", "mamba2-1.3b", "mamba2-2.7b", "falcon-mamba-7b"],
    "hybrid": ["zamba2-1.2b", "zamba2-2.7b", "falcon-h1-0.5b", "falcon-h1-1.5b", "bamba-9b", "jamba-v0.1",
               "nemotron-h-4b", "hymba-1.5b"],
}


def test_catalog_imports_without_torch():
    code = ("import sys, edgebench.models.catalog as c; c.names(); c.get('mamba-130m'); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("family", sorted(REQUIRED))
def test_required_presets_present_with_family(family):
    have = catalog.names(family)
    assert set(REQUIRED[family]) <= set(have)
    tiny = [n for n in have if catalog.get(n).tiny]
    assert tiny, f"no tiny {family} preset for CPU runs"


def test_every_preset_is_well_formed():
    for name in catalog.names():
        p = catalog.get(name)
        assert name == name.lower()
        assert p.max_ctx > 0 and p.backends[0] == "hf"
        if "mamba_ssm" in p.backends:
            assert p.mamba_ssm["ssm_cfg"]["layer"] in ("Mamba1", "Mamba2")
        if not p.tiny:
            assert p.source.get("hf") and p.published_params


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UserError, match=r"mamba2-780m.*edgebench models"):
        catalog.get("mamba2-780")
    with pytest.raises(UserError, match="unknown family"):
        catalog.names("rnn")


def test_hub_id_is_refused_with_a_local_directory_hint(tmp_path):
    with pytest.raises(UserError, match="does not download.*local-dir"):
        catalog.resolve("Qwen/Qwen2.5-0.5B")
    with pytest.raises(UserError, match="no config.json"):
        catalog.resolve(str(tmp_path))


def test_local_directory_resolves_with_inferred_family(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba2", "max_position_embeddings": 8}))
    p = catalog.resolve(str(tmp_path))
    assert p.family == "ssm" and p.local_dir == str(tmp_path.resolve()) and p.position_limit is None


def test_remote_code_preset_explains_the_local_directory():
    pytest.importorskip("transformers", reason="transformers is needed to build configs")
    with pytest.raises(UserError, match="remote code.*directory"):
        catalog.get("hymba-1.5b").hf_config()


COUNTED = [n for n in catalog.names() if catalog.get(n).published_params and not catalog.get(n).remote_code]


@pytest.mark.parametrize("name", COUNTED)
def test_param_count_matches_published(name):
    """The tolerance is half a unit of the published count's last digit (`published_rounding`): an exact
    safetensors count must match exactly; a count published as "1.4B" may be anywhere in 1.35B-1.45B."""
    pytest.importorskip("transformers", reason="transformers is needed to build the meta model")
    p = catalog.get(name)
    computed = catalog.counted_params(p)
    assert abs(computed - p.published_params) <= p.published_rounding / 2, (computed, p.published_params)


@pytest.mark.parametrize("name", [n for n in catalog.names() if not catalog.get(n).remote_code])
def test_declared_param_count_is_the_built_count(name):
    """`params` in presets.json is what a meta-device build counts, exactly (this test runs on the
    oldest and the newest transformers supported: `make test-oldest`)."""
    pytest.importorskip("transformers", reason="transformers is needed to build the meta model")
    p = catalog.get(name)
    try:
        built = catalog.counted_params(p)
    except UserError as exc:  # a transformers that cannot build it (5.5: zamba2-2.7b) has nothing to compare
        pytest.skip(str(exc))
    assert p.params == built and catalog.param_count(p) == built


def test_the_memory_model_of_a_catalog_preset_needs_no_torch():
    """The max-context planner, the run summary and each point's worker predict memory from the
    declared count: no torch or transformers import (a meta build took 12.6 s of a GPU machine's suite
    start before its first search). A preset changed in code is counted again, not given the count."""
    import subprocess
    import sys
    code = ("import sys; from edgebench.models import catalog, memory_model; "
            "p = memory_model.predict(catalog.get('mamba2-780m'), 4096); "
            "print(p['weights_bytes'], sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(2 * catalog.get("mamba2-780m").params), "[]"]
    changed = dataclasses.replace(catalog.get("tiny-mamba"), config={**catalog.get("tiny-mamba").config,
                                                                     "tie_word_embeddings": False})
    pytest.importorskip("transformers", reason="transformers is needed to build the meta model")
    assert catalog.param_count(changed) == catalog.counted_params(changed) != catalog.get("tiny-mamba").params


def test_tied_embeddings_are_counted_once():
    pytest.importorskip("transformers", reason="transformers is needed to build the meta model")
    p = catalog.get("tiny-mamba")
    untied = catalog.Preset(**{**p.__dict__, "name": "tiny-mamba-untied",
                               "config": {**p.config, "tie_word_embeddings": False}})
    d, v = p.config["hidden_size"], p.config["vocab_size"]
    assert catalog.param_count(untied) - catalog.param_count(p) == d * v


def test_models_command_json_lists_every_preset(capsys):
    pytest.importorskip("transformers", reason="transformers is needed for parameter counts")
    import argparse

    from edgebench.commands import models as cmd

    def main(argv):
        parser = argparse.ArgumentParser()
        cmd.add_arguments(parser)
        return cmd.main(parser.parse_args(argv[1:]))

    assert main(["models", "--json"]) == 0
    data = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(REQUIRED["ssm"]) | set(REQUIRED["hybrid"]) | set(REQUIRED["transformer"]) <= set(data)
    assert data["mamba2-780m"]["kv_bytes_per_token"] == 0 and data["mamba2-780m"]["state_bytes"] > 0
    assert data["qwen2.5-0.5b"]["params"] == 494_032_768 and data["qwen2.5-0.5b"]["state_bytes"] == 0
    assert data["hymba-1.5b"]["params"] is None and data["hymba-1.5b"]["params_why"]
    assert main(["models", "--family", "ssm"]) == 0
    assert "mamba-130m" in capsys.readouterr().out


def test_a_transformers_that_cannot_build_a_preset_is_named_not_a_crash(monkeypatch, capsys):
    """transformers 5.5 fails inside `from_config` for zamba2-2.7b (its tie_weights check): `param_count`
    names the version and the upgrade, and `edgebench models` lists the preset without a count."""
    transformers = pytest.importorskip("transformers", reason="transformers is needed to build the meta model")

    def broken(*args, **kwargs):
        raise ValueError("There is an issue with your definition of `tie_weights_keys`")
    p = catalog.get("zamba2-2.7b")
    catalog.counted_params.cache_clear()
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", broken)
    try:
        with pytest.raises(UserError, match=rf"transformers {transformers.__version__} cannot build zamba2-2.7b "
                                            r"\(zamba2\); upgrade it: pip install -U transformers \(ValueError"):
            catalog.counted_params(p)
        from edgebench.commands import models as cmd
        row = next(r for r in cmd.rows("hybrid") if r["name"] == "zamba2-2.7b")
    finally:
        catalog.counted_params.cache_clear()
    assert row["params"] is None
    assert row["params_why"] == f"transformers {transformers.__version__} cannot build zamba2-2.7b (zamba2)"
