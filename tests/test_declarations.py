"""One declaration per fact: the choices a sweep, a loader and the logs accept, and the names of the
optional packages, are each assigned in one module and imported everywhere else."""
from __future__ import annotations

import ast
from pathlib import Path

import edgebench
from edgebench import choices

SRC = Path(edgebench.__file__).parent
FACTS = {"BACKENDS": "choices.py", "DTYPES": "choices.py", "ATTN_KINDS": "choices.py",
         "LOGITS_MODES": "choices.py", "DECODE_MODES": "choices.py", "FAMILIES": "choices.py",
         "PACKAGES": "toolchain/packages.py", "EXTENSIONS": "toolchain/packages.py",
         "DISTRIBUTIONS": "toolchain/packages.py"}
# Assignments that are not a second declaration: the sweep's dtypes are the loader's plus "auto".
DERIVED = {("sweep/spec.py", "DTYPES")}
# Still declared twice on other helpers' branches; the coordinator empties this after merging.
FOREIGN = {("telemetry/environment.py", "PACKAGES")}  # its table of install fixes, not package names


def _assigned(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_each_fact_is_assigned_in_one_module():
    twice = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for name in _assigned(path) & FACTS.keys():
            if rel != FACTS[name] and (rel, name) not in DERIVED | FOREIGN:
                twice.append(f"{rel} assigns {name}, declared in {FACTS[name]}")
    assert not twice, "\n".join(twice)


def test_the_sweep_and_the_loaders_accept_the_same_choices():
    from edgebench.models import catalog, loaders, memory_model
    from edgebench.sweep import spec

    for name in ("BACKENDS", "ATTN_KINDS", "LOGITS_MODES", "DECODE_MODES"):
        assert getattr(spec, name) is getattr(choices, name)
    assert spec.DTYPES == (choices.AUTO_DTYPE, *choices.DTYPES)
    assert loaders.DTYPES is choices.DTYPES
    assert loaders.BACKENDS is memory_model.BACKENDS is choices.BACKENDS
    assert catalog.FAMILIES is choices.FAMILIES


def test_kernel_packages_name_their_extensions_once():
    from edgebench.models import kernel_detect
    from edgebench.telemetry import environment
    from edgebench.toolchain import build, packages

    assert build.PACKAGES is packages.PACKAGES
    assert packages.distribution("mamba_ssm") == "mamba-ssm"
    assert packages.KERNEL_MODULES["mamba_ssm"].extension == "selective_scan_cuda"
    assert set(packages.KERNEL_MODULES) <= set(environment.PACKAGES)
    # kernel detection checks each SSM kernel package together with its compiled extension
    assert set(packages.KERNEL_MODULES) <= set(kernel_detect.available())
