"""Go programs of ours under ``tools/``, built once with the Go toolchain and cached by the hash of their sources.

One mechanism for every Go tool the project uses (the istiod oracle, ``tools/istio-oracle``; Kubernetes' API
server and etcd, ``tools/kube``): a :class:`GoTool` is a Go module in ``tools/<module>`` with one or more
main packages. Its binaries are built together, in one ``go build`` (the packages they share compile once),
into ``~/.cache/meshbridge/tools/<binary>-<hash>``, where the hash covers ``go.mod``, ``go.sum`` and every
``*.go`` file of the module: a new pin or a change to the program builds anew, and nothing else does. A
build holds a lock in the cache folder, so two processes that need the same tool build it once. An
environment variable per binary names a prebuilt one instead.

Where Go is absent (and nothing is cached), :func:`ensure_tool` raises the tool's error with one line that
says what is missing and how to get it; the tool's tests skip with that line.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from meshbridge.errors import MeshbridgeError

TOOLS_DIR = Path(__file__).resolve().parents[2] / "tools"
"""The Go modules of the tools, in a checkout of meshbridge."""

_BUILD_OUTPUT_LINES = 15


class ToolUnavailable(MeshbridgeError):
    """A Go tool cannot run here (no Go, no checkout of the tools, a failed build); the message says why."""


@dataclass(frozen=True)
class GoBinary:
    """One main package of a tool's module.

    Attributes:
        name: the binary's name (``istio-oracle``, ``kube-apiserver``, ``etcd``).
        package: its package, relative to the module (``.``, ``./kube-apiserver``).
        env: the environment variable that names a prebuilt binary instead (``MESHBRIDGE_ISTIO_ORACLE``).
    """

    name: str
    package: str
    env: str


@dataclass(frozen=True)
class GoTool:
    """A Go module of ours in ``tools/<module>`` and the binaries built from it.

    Attributes:
        module: the folder under ``tools/``.
        title: the tool's name in messages (``istiod oracle``).
        purpose: what it gives, after "needs the Go toolchain ... to build" (``Istio's own translation``).
        make_target: the ``make`` target that builds it.
        binaries: its main packages.
        cold: how long a cold build takes, for the line printed before one starts.
        ldflags: ``-ldflags`` of the build, from the module's folder (e.g. version variables read from ``go.mod``).
        label: a short description of the pinned sources for that line (``Istio 1.31``), from the module's folder.
        error: the exception raised when the tool cannot run (a :class:`ToolUnavailable` subclass, or another
            :class:`MeshbridgeError` whose constructor takes the message).
    """

    module: str
    title: str
    purpose: str
    make_target: str
    binaries: tuple[GoBinary, ...]
    cold: str = "several minutes"
    ldflags: Callable[[Path], str] = field(default=lambda _: "")
    label: Callable[[Path], str] = field(default=lambda _: "")
    error: type[MeshbridgeError] = ToolUnavailable

    @property
    def directory(self) -> Path:
        """The module's folder in this checkout (``tools/<module>``)."""
        return TOOLS_DIR / self.module

    def binary(self, name: str) -> GoBinary:
        """The binary called ``name``."""
        for b in self.binaries:
            if b.name == name:
                return b
        raise KeyError(name)


def source_hash(module_dir: Path) -> str:
    """The first 16 hex digits of the SHA-256 of ``go.mod``, ``go.sum`` and every ``*.go`` file, in path order.

    Each file contributes its path relative to the module (its name, for a file at the top) and its bytes.
    """
    h = hashlib.sha256()
    files = [module_dir / "go.mod", module_dir / "go.sum", *module_dir.rglob("*.go")]
    for path in sorted(files):
        h.update(path.relative_to(module_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/meshbridge/tools`` (``~/.cache/meshbridge/tools``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meshbridge" / "tools"


def cached_path(tool: GoTool, name: str) -> Path:
    """Where the build of binary ``name`` for the current sources is cached (it may not exist yet)."""
    return cache_dir() / f"{name}-{source_hash(tool.directory)}"


def require_module(module_dir: Path, path: str) -> str:
    """The version ``go.mod`` in ``module_dir`` requires of module ``path`` (``""`` when it does not)."""
    text = (module_dir / "go.mod").read_text()
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(path)}\s+(v\S+)", text, re.MULTILINE)
    return m.group(1) if m else ""


def module_file(module_dir: Path, path: str, relative: str) -> Path | None:
    """File ``relative`` of module ``path`` at the version ``module_dir``'s ``go.mod`` requires, from Go's module
    cache (downloaded first when it is not there yet); ``None`` without Go or when the file is not in the module."""
    go = shutil.which("go")
    if go is None:
        return None
    env = {**os.environ, "GOFLAGS": "-mod=readonly"}

    def located() -> str:
        done = subprocess.run(
            [go, "list", "-m", "-f", "{{.Dir}}", path],
            cwd=module_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    found = located()
    if not found:  # not in the module cache yet: fetch it (what building the tool would have done)
        subprocess.run([go, "mod", "download", path], cwd=module_dir, env=env, capture_output=True, check=False)
        found = located()
    file = Path(found) / relative if found else None
    return file if file is not None and file.is_file() else None


def ensure_tool(tool: GoTool, progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Every binary of ``tool``: the prebuilt one its variable names, the cached build, or a new build.

    Args:
        tool: the tool.
        progress: called with one line before a build starts (a cold build takes minutes).

    Returns:
        The path of each binary, by name.

    Raises:
        tool.error: a variable names something that is not an executable file; no Go toolchain and no cached
            build; no ``tools/<module>`` in this installation; or the build failed (its last lines are quoted).
    """
    found: dict[str, Path] = {}
    for b in tool.binaries:
        given = os.environ.get(b.env)
        if given:
            if not os.access(given, os.X_OK):
                raise tool.error(f"{b.env}={given} is not an executable file; unset it to build {b.name}")
            found[b.name] = Path(given)
    wanted = [b for b in tool.binaries if b.name not in found]
    if not wanted:
        return found
    if not (tool.directory / "go.mod").is_file():
        names = " and ".join(f"{b.env}" for b in wanted)
        raise tool.error(
            f"{tool.title}: {tool.directory} is missing (meshbridge is not installed from a checkout); "
            f"run from a clone of the repository, or set {names} to a built binary"
        )
    targets = {b.name: cached_path(tool, b.name) for b in wanted}
    if all(p.is_file() for p in targets.values()):
        return {**found, **targets}
    go = shutil.which("go")
    if go is None:
        raise tool.error(
            f"{tool.title}: needs the Go toolchain (go 1.26 or newer on PATH) to build {tool.purpose}; "
            f"install Go, then run 'make {tool.make_target}'"
        )
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _lock(cache / f".{tool.module}.lock"):
        if not all(p.is_file() for p in targets.values()):  # another process may have built it meanwhile
            if progress is not None:
                label = tool.label(tool.directory)
                progress(
                    f"building {tool.purpose} from tools/{tool.module}"
                    + (f" ({label}; cold: {tool.cold})" if label else f" (cold: {tool.cold})")
                )
            _build(tool, go, wanted, targets)
    return {**found, **targets}


def build_main(tool: GoTool) -> int:
    """``python -m`` of a tool's module (``make oracle``, ``make kube``, ``make istiod``): find or build its
    binaries, then print where they are, the release and the seconds it took; exit status 2 with the one line
    of :attr:`GoTool.error` when it cannot."""
    start = time.monotonic()
    try:
        found = ensure_tool(tool, lambda line: print(line, file=sys.stderr, flush=True))
    except tool.error as e:
        print(str(e), file=sys.stderr)
        return 2
    took = time.monotonic() - start
    print(f"{' and '.join(str(found[b.name]) for b in tool.binaries)} ({tool.label(tool.directory)}; {took:.1f} s)")
    return 0


def _build(tool: GoTool, go: str, wanted: list[GoBinary], targets: dict[str, Path]) -> None:
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".build-") as tmp:
        out = Path(tmp)
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false"}
        command = [go, "build", "-trimpath", "-ldflags", tool.ldflags(tool.directory)]
        command += ["-o", str(out) + os.sep, *(b.package for b in wanted)]
        done = subprocess.run(command, cwd=tool.directory, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-_BUILD_OUTPUT_LINES:])
            raise tool.error(f"{tool.title}: 'go build' in {tool.directory} failed:\n{tail}")
        for b in wanted:
            # go build -o DIR/ names each binary after the last element of its package path
            built = out / (Path(b.package).name if b.package != "." else tool.directory.name)
            os.replace(built, targets[b.name])  # atomic: a concurrent build of the same hash yields the same file


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if needed), held while the block runs."""
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
