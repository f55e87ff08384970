"""The folder tree shows the dependency direction: importing a pure layer loads no I/O module (STYLE 1).

Each import runs in a fresh interpreter, so what another test imported first cannot hide a dependency.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PURE = [
    "meshbridge.spec",
    "meshbridge.pki",
    "meshbridge.render",
    "meshbridge.lint",
    "meshbridge.world",
    "meshbridge.inputs",
    "meshbridge.peer",
]
IO_LAYERS = ("local", "kube", "aws", "cli", "verify")
IO_MODULES = ("meshbridge.pki.store",)  # the I/O part of a pure package


def io_modules_loaded_by(module: str) -> list[str]:
    """The I/O modules a fresh interpreter has loaded after ``import module``."""
    code = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('meshbridge.'))))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    return [m for m in loaded if m in IO_MODULES or m.split(".")[1] in IO_LAYERS]


@pytest.mark.parametrize("module", PURE)
def test_a_pure_layer_loads_no_io_module(module: str) -> None:
    assert io_modules_loaded_by(module) == []


def test_an_io_layer_is_seen_loading_the_store() -> None:
    loaded = io_modules_loaded_by("meshbridge.local.twin")  # it keeps the twin's certificates in the store
    assert "meshbridge.pki.store" in loaded and "meshbridge.local.twin" in loaded


def test_the_store_is_loaded_by_the_first_use_of_its_names() -> None:
    import meshbridge.pki
    from meshbridge.pki import PkiStore
    from meshbridge.pki.store import PkiStore as StorePkiStore

    assert PkiStore is StorePkiStore
    with pytest.raises(AttributeError) as missing:
        meshbridge.pki.PkiStores  # noqa: B018
    assert str(missing.value) == "module 'meshbridge.pki' has no attribute 'PkiStores'"
