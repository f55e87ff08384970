"""One way to build a Go tool: cached by the hash of its sources, one ``go build`` for all its binaries, one line
without Go. Exercised on the two tools (the istiod oracle, kube-apiserver + etcd) with a stand-in ``go``."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from meshbridge import gotools
from meshbridge.gotools import GoBinary, GoTool, ToolUnavailable
from meshbridge.istiod import oracle
from meshbridge.kube import binaries
from meshbridge.kube.binaries import KUBE, KubeServersUnavailable, ensure_binaries


@pytest.fixture
def no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for b in (*KUBE.binaries, *oracle.ORACLE.binaries):
        monkeypatch.delenv(b.env, raising=False)
    return tmp_path / "cache" / "meshbridge" / "tools"


def fake_go(folder: Path) -> Path:
    """A ``go`` that records its arguments and environment, and writes each package's binary into ``-o DIR/``."""
    folder.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    go.write_text(
        f"#!{sys.executable}\n"
        "import os, sys, json, pathlib\n"
        "args = sys.argv[1:]\n"
        "log = pathlib.Path(os.environ['FAKE_GO_LOG'])\n"
        "log.write_text(json.dumps({'args': args, 'cwd': os.getcwd(), 'cgo': os.environ.get('CGO_ENABLED'),"
        " 'goflags': os.environ.get('GOFLAGS')}))\n"
        "out = pathlib.Path(args[args.index('-o') + 1])\n"
        "for pkg in args[args.index('-o') + 2:]:\n"
        "    name = pathlib.Path(pkg).name if pkg != '.' else pathlib.Path.cwd().name\n"
        "    (out / name).write_text('#!/bin/sh\\n')\n"
    )
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    return go


def test_kube_without_go_is_one_line_naming_what_to_install(no_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gotools.shutil, "which", lambda _: None)
    with pytest.raises(KubeServersUnavailable) as e:
        ensure_binaries()
    text = str(e.value)
    assert "\n" not in text
    assert "kube-apiserver and etcd: needs the Go toolchain" in text and "make kube" in text


def test_a_cached_build_needs_no_go(no_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin of the above: once built for these sources, both binaries are found without Go."""
    monkeypatch.setattr(gotools.shutil, "which", lambda _: None)
    no_cache.mkdir(parents=True)
    for b in KUBE.binaries:
        gotools.cached_path(KUBE, b.name).write_text("#!/bin/sh\n")
    found = ensure_binaries()
    assert set(found) == {"kube-apiserver", "etcd"}
    assert all(p.parent == no_cache and p.name.endswith(gotools.source_hash(KUBE.directory)) for p in found.values())


def test_both_binaries_come_from_one_go_build_with_the_release_version(
    no_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    go = fake_go(tmp_path / "bin")
    monkeypatch.setattr(gotools.shutil, "which", lambda _: str(go))
    monkeypatch.setenv("FAKE_GO_LOG", str(tmp_path / "go.json"))
    lines: list[str] = []
    found = ensure_binaries(lines.append)
    import json

    call = json.loads((tmp_path / "go.json").read_text())
    args = call["args"]
    assert args[:2] == ["build", "-trimpath"] and args[-2:] == ["./kube-apiserver", "./etcd"]
    assert call["cwd"] == str(KUBE.directory) and call["cgo"] == "0" and "-mod=readonly" in call["goflags"]
    version = binaries.kubernetes_version()
    assert version.startswith("v1.") and f"k8s.io/component-base/version.gitVersion={version}" in args[3]
    assert all(p.is_file() for p in found.values())
    assert lines == [
        f"building Kubernetes' API server and etcd from tools/kube (Kubernetes {version}, etcd "
        f"{gotools.require_module(KUBE.directory, 'go.etcd.io/etcd/server/v3')}; cold: 5 to 10 minutes on 2 cores)"
    ]
    # cached now: a second call builds nothing
    (tmp_path / "go.json").unlink()
    assert ensure_binaries(lines.append) == found and not (tmp_path / "go.json").exists()


def test_a_failed_build_quotes_go_and_caches_nothing(
    no_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    go.write_text("#!/bin/sh\necho 'main.go:3: undefined: app.NewAPIServerCommand' >&2\nexit 1\n")
    go.chmod(0o755)
    monkeypatch.setattr(gotools.shutil, "which", lambda _: str(go))
    with pytest.raises(KubeServersUnavailable, match=r"'go build' in .*tools/kube failed:\nmain.go:3: undefined"):
        ensure_binaries()
    assert not any(p.name.startswith(("kube-apiserver-", "etcd-")) for p in no_cache.iterdir())


def test_a_prebuilt_binary_named_by_its_variable_is_used_and_checked(
    no_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(gotools.shutil, "which", lambda _: None)
    mine = tmp_path / "my-etcd"
    mine.write_text("#!/bin/sh\n")
    mine.chmod(0o755)
    monkeypatch.setenv("MESHBRIDGE_ETCD", str(mine))
    no_cache.mkdir(parents=True)
    gotools.cached_path(KUBE, "kube-apiserver").write_text("#!/bin/sh\n")
    assert ensure_binaries()["etcd"] == mine
    mine.chmod(0o644)
    with pytest.raises(KubeServersUnavailable, match=r"MESHBRIDGE_ETCD=.* is not an executable file"):
        ensure_binaries()


def test_the_hash_covers_every_go_file_of_the_module_and_nothing_else(tmp_path: Path) -> None:
    module = tmp_path / "tool"
    (module / "a").mkdir(parents=True)
    (module / "go.mod").write_text("module x\n")
    (module / "go.sum").write_text("")
    (module / "a" / "main.go").write_text("package main\n")
    first = gotools.source_hash(module)
    (module / "README.md").write_text("notes")
    assert gotools.source_hash(module) == first
    (module / "a" / "main.go").write_text("package main // changed\n")
    assert gotools.source_hash(module) != first


def test_the_oracle_keeps_its_cache_name_and_hash(no_cache: Path) -> None:
    """The generalisation changed nothing for the oracle: the same file name and hash as before."""
    assert oracle.source_hash() == gotools.source_hash(oracle.TOOL_DIR)
    assert gotools.cached_path(oracle.ORACLE, "istio-oracle") == no_cache / f"istio-oracle-{oracle.source_hash()}"


def test_a_tool_whose_module_is_missing_says_so(no_cache: Path) -> None:
    tool = GoTool("no-such-tool", "thing", "a thing", "thing", (GoBinary("thing", ".", "MESHBRIDGE_THING"),))
    with pytest.raises(ToolUnavailable, match=r"tools/no-such-tool is missing .* set MESHBRIDGE_THING"):
        gotools.ensure_tool(tool)


def test_kube_go_mod_pins_every_staging_module_to_the_release() -> None:
    """Each ``k8s.io`` module Kubernetes resolves from its own staging tree is replaced by the matching
    published release: a missing one would fail the build with 'k8s.io/x@v0.0.0: invalid version'."""
    text = (KUBE.directory / "go.mod").read_text()
    release = binaries.kubernetes_version()  # v1.37.2 -> v0.37.2
    staging = "v0." + release.split(".", 1)[1]
    replaced = [line.split() for line in text.splitlines() if "=>" in line and line.strip().startswith("k8s.io/")]
    assert len(replaced) >= 30
    assert all(r[0] == r[2] and r[3] == staging for r in replaced), replaced
    assert os.path.isfile(KUBE.directory / "kube-apiserver" / "main.go")
    assert os.path.isfile(KUBE.directory / "etcd" / "main.go")
