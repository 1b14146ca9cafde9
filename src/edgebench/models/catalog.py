"""The model catalog: published architectures as data (`presets.json`), no weights.

Contract:
- `names(family=None)` lists preset names (lowercase, catalog order); `get(name)` returns a frozen
  `Preset` or raises `UserError` naming close matches and the `edgebench models` hint.
- `resolve(name_or_path)` also accepts a local directory holding a `config.json` (a Preset with
  `local_dir` set, family inferred from `model_type`); a hub id (`org/name`) that is not a local
  directory raises `UserError`: edgebench never downloads.
- `param_count(preset)`: a catalog preset's declared `params`, else (a local directory, a preset
  changed in code) `counted_params(preset)`, which builds the transformers model on the `meta` device
  (no memory, no init) and counts parameters once each (`Module.parameters()` already yields a tied
  tensor once). The declared count spares every reader of the memory model (the max-context planner,
  each point's worker, the floors) importing torch and transformers to build the model; the tests
  check it equals the built count on the oldest and newest transformers supported. Cached. A
  transformers that cannot build the preset raises `UserError` naming its version and the upgrade.
- `Preset.hf_config()` builds the transformers config object (transformers imported lazily).

Preset fields: `family` (transformer | ssm | hybrid), `source` ({"hf": repo id, "paper": ...}),
`model_type` (transformers config key), `params` (the exact count `counted_params` gives),
`config` (architecture fields copied from the published config.json), `published_params` with `published_rounding` (the unit of its last published digit: "1.4B" is
1e8, an exact safetensors count is 1), `unconfirmed` (config fields not checked against the
published file), `max_ctx` (trained/declared context), `rope` (True where the
position limit comes from RoPE and may be overridden), `backends`, `mamba_ssm` (MambaConfig fields
for the `mamba_ssm` backend), `remote_code` (needs the model's own modeling file: local dir only).
This module imports only the standard library at module level.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
from pathlib import Path
from typing import Any

from edgebench.choices import FAMILIES
from edgebench.errors import MissingDependency, UserError

SSM_TYPES = frozenset({"mamba", "mamba2", "falcon_mamba"})
HYBRID_TYPES = frozenset({"zamba", "zamba2", "jamba", "bamba", "falcon_h1", "nemotron_h",
                          "granitemoehybrid", "hymba", "lfm2", "qwen3_next"})
_PRESETS_PATH = Path(__file__).with_name("presets.json")


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    family: str
    model_type: str
    config: dict[str, Any]
    source: dict[str, Any]
    published_params: int | None
    max_ctx: int
    rope: bool
    params: int | None = None
    backends: tuple[str, ...] = ("hf",)
    mamba_ssm: dict[str, Any] | None = None
    remote_code: bool = False
    tiny: bool = False
    published_rounding: int = 1
    unconfirmed: tuple[str, ...] = ()
    local_dir: str | None = None

    def __hash__(self) -> int:
        return hash((self.name, self.local_dir))

    @property
    def position_limit(self) -> int | None:
        """Longest context the architecture enforces; None for pure SSMs (no positions: max_ctx is
        only the trained length)."""
        return None if self.family == "ssm" else self.max_ctx

    @property
    def source_label(self) -> str:
        return self.local_dir or self.source.get("hf") or self.source.get("note", "")

    def hf_config(self):
        """The transformers config object for this preset (random-weight builds, meta counts)."""
        try:
            from transformers import AutoConfig
        except ImportError as exc:
            raise MissingDependency("transformers", "pip install 'edgebench[hf]'", str(exc)) from exc
        if self.local_dir:
            return AutoConfig.from_pretrained(self.local_dir, local_files_only=True,
                                              trust_remote_code=self.remote_code)
        if self.remote_code:
            raise UserError(
                f"{self.name} ({self.source.get('hf')}) is remote code: transformers has no built-in "
                f"class for model_type '{self.model_type}'. Download the repository (config.json, its "
                f"modeling/configuration .py files, optionally weights) on a machine with network, "
                f"copy it here and pass the directory: -m /path/to/{self.source.get('hf', '').split('/')[-1]}")
        try:
            return AutoConfig.for_model(self.model_type, **self.config)
        except Exception as exc:  # an unknown model_type, or a config this release rejects (5.5: nemotron_h "-")
            raise cannot_build(self, exc) from exc


@functools.lru_cache(maxsize=1)
def _presets() -> dict[str, Preset]:
    data = json.loads(_PRESETS_PATH.read_text())["presets"]
    out = {}
    for name, entry in data.items():
        fields = dict(entry)
        fields["backends"] = tuple(fields.get("backends", ("hf",)))
        fields["unconfirmed"] = tuple(fields.get("unconfirmed", ()))
        if fields["family"] not in FAMILIES:
            raise ValueError(f"presets.json: {name} has unknown family {fields['family']!r}")
        out[name] = Preset(name=name, **fields)
    return out


def names(family: str | None = None) -> list[str]:
    if family is not None and family not in FAMILIES:
        raise UserError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")
    return [n for n, p in _presets().items() if family is None or p.family == family]


def get(name: str) -> Preset:
    presets = _presets()
    key = name.strip().lower()
    if key in presets:
        return presets[key]
    close = difflib.get_close_matches(key, list(presets), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"unknown model {name!r}; {hint}run `edgebench models` to list the presets")


def infer_family(model_type: str) -> str:
    if model_type in SSM_TYPES:
        return "ssm"
    if model_type in HYBRID_TYPES:
        return "hybrid"
    return "transformer"


def resolve(name_or_path: str) -> Preset:
    """A preset name, or a local model directory with a config.json."""
    path = Path(os.path.expanduser(name_or_path))
    if path.is_dir():
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise UserError(f"{path} is a directory but has no config.json; pass a model directory "
                            f"saved with save_pretrained() or downloaded from the hub")
        try:
            cfg = json.loads(cfg_file.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{cfg_file} is not valid JSON ({exc}); re-download the model") from exc
        model_type = cfg.get("model_type")
        if not model_type:
            raise UserError(f"{cfg_file} has no model_type; it is not a transformers model directory")
        remote = bool(cfg.get("auto_map")) or model_type == "hymba"
        max_ctx = int(cfg.get("max_position_embeddings") or cfg.get("seq_length") or 0) or 2048
        family = infer_family(model_type)
        return Preset(name=path.name.lower(), family=family, model_type=model_type, config=cfg,
                      source={"hf": None, "local": str(path)}, published_params=None, max_ctx=max_ctx,
                      rope=family != "ssm", backends=("hf",), remote_code=remote,
                      local_dir=str(path.resolve()))
    if "/" in name_or_path and not name_or_path.startswith((".", "/", "~")):
        raise UserError(
            f"{name_or_path!r} looks like a Hugging Face hub id, and edgebench does not download "
            f"(edge devices are often offline). On a machine with network run "
            f"`huggingface-cli download {name_or_path} --local-dir ./{name_or_path.split('/')[-1]}`, "
            f"copy the directory here and pass its path, or use a preset (`edgebench models`)")
    if "/" in name_or_path:
        raise UserError(f"{name_or_path} is not a directory; pass a model directory with a config.json")
    return get(name_or_path)


@functools.lru_cache(maxsize=None)
def param_count(preset: Preset) -> int:
    """Parameters of the preset's transformers model, each tensor once (tied embeddings count once):
    declared for a catalog preset as shipped, else counted (see the module doc)."""
    if preset.params is not None and _presets().get(preset.name) == preset:
        return preset.params
    return counted_params(preset)


@functools.lru_cache(maxsize=None)
def counted_params(preset: Preset) -> int:
    """The preset's parameters counted on a meta-device build of its transformers model."""
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        from edgebench.telemetry.stack import torch_install_command
        raise MissingDependency("torch + transformers", "pip install 'edgebench[hf]', and for torch: "
                                f"{torch_install_command()}", str(exc)) from exc
    cfg = preset.hf_config()
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg, trust_remote_code=preset.remote_code)
    except Exception as exc:  # a transformers release that cannot build this architecture (e.g. 5.5: zamba2-2.7b)
        raise cannot_build(preset, exc) from exc
    return sum(p.numel() for p in model.parameters())


def cannot_build(preset: Preset, exc: Exception) -> UserError:
    """The error for a transformers that cannot build a preset: its version, the cause, the fix."""
    import transformers
    cause = " ".join(f"{type(exc).__name__}: {exc}".split())
    cause = cause if len(cause) <= 160 else cause[:157] + "..."
    return UserError(f"transformers {transformers.__version__} cannot build {preset.name} ({preset.model_type}); "
                     f"upgrade it: pip install -U transformers ({cause})")
