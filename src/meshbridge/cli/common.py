"""Pieces every command shares: the ``-f/--file`` option, consoles, tables and error output; the state folder
(``--state-dir``, the PKI store and the local twin kept there), ``--manifests``, ``--cert``, ``--context`` and the
seed files."""

from __future__ import annotations

import contextlib
import errno
import json
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from meshbridge.envoy.proxyconfig import Kind, proxy_config_kind
from meshbridge.errors import IstioConfigError, LocalError, MeshbridgeError
from meshbridge.hints import is_json_document, with_options
from meshbridge.istio.changes import SUPPORTED_LINES, newer_than_known
from meshbridge.istio.files import MountedFile
from meshbridge.lint import SecretFile
from meshbridge.local.curl import check_headers
from meshbridge.local.twin import LocalTwin, TwinState
from meshbridge.pki import PkiStore, default_state_dir
from meshbridge.spec import DEFAULT_FILE, Bridge, load_bridge
from meshbridge.tabwriter import format_table


class _HintedConsole(Console):
    """A console whose text's command hints carry the user's bridge and cluster options (``-f``, ``--state-dir``,
    ``--context``, ``--kubeconfig``: :func:`~meshbridge.hints.with_options`); ``--json`` documents are printed as
    they are, and noted (:attr:`json_printed`: the command's document is out, an error adds none)."""

    json_printed = False

    def print(self, *objects: Any, **kwargs: Any) -> None:
        documents = [isinstance(o, str) and is_json_document(o) for o in objects]
        self.json_printed |= any(documents) and not self.stderr
        shown = [
            with_options(o) if isinstance(o, str) and not d else o for o, d in zip(objects, documents, strict=True)
        ]
        super().print(*shown, **kwargs)


out = _HintedConsole(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = _HintedConsole(stderr=True, highlight=False, soft_wrap=True)

BridgeFile = Annotated[
    Path,
    typer.Option(
        "-f",
        "--file",
        help="The bridge spec (YAML). Relative paths inside it resolve against its folder.",
        show_default=True,
    ),
]
DEFAULT_BRIDGE = Path(DEFAULT_FILE)
Kubeconfig = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")]
JsonDocument = Annotated[
    bool,
    typer.Option("--json", help="Print the result as one JSON document on stdout (progress and notes on stderr)."),
]

EXIT_INPUT_ERROR = 2
"""Exit status of a command stopped by bad input or a failed operation (``main`` maps the error to it)."""


def print_json(doc: object) -> None:
    """A ``--json`` document on stdout, indented, its text as the product wrote it."""
    out.print(json.dumps(doc, indent=2))


_OS_PROBLEMS = {
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "give a folder where a folder is expected"),
    errno.EISDIR: ("is a folder, not a file", "give a file"),
    errno.EEXIST: ("exists already", "give a new path, or remove it"),
    errno.ENOENT: ("does not exist", "check the path"),
    errno.EACCES: ("permission denied", "choose a path you may write, or fix its permissions"),
    errno.EPERM: ("operation not permitted", "choose a path you may write, or fix its permissions"),
    errno.EROFS: ("is on a read-only file system", "choose a writable path"),
    errno.ENOSPC: ("no space left on the device", "free some space"),
}


def os_error_text(e: OSError) -> str:
    """One line for an ``OSError``: the path(s), what is wrong and the fix (never a traceback)."""
    where = " → ".join(str(f) for f in (e.filename, e.filename2) if f is not None) or "a file operation"
    problem, fix = _OS_PROBLEMS.get(e.errno or 0, (e.strerror or str(e), "check the path and its permissions"))
    return f"{where}: {problem}. Fix: {fix}"


def error_message(e: MeshbridgeError | OSError) -> str:
    """The one line ``main`` prints for an error that stops a command (its hints with the user's options)."""
    return os_error_text(e) if isinstance(e, OSError) else with_options(str(e))


@contextlib.contextmanager
def error_documents(words: Sequence[str], takes_json: bool) -> Iterator[None]:
    """Around a command given ``words``: when it was given ``--json`` (and ``takes_json``, it has that option) and an
    error stops it before it printed its document (a ``MeshbridgeError``, a refused file operation, a usage error
    such as an unknown option), print the error document on stdout (:func:`print_error_json`), so a script that
    reads only stdout sees the error; the error line on stderr and the exit code stay as without --json."""
    wanted = takes_json and "--json" in words
    out.json_printed = False
    try:
        yield
    except (MeshbridgeError, OSError) as e:
        if wanted and not out.json_printed:
            print_error_json(error_message(e))
        raise
    except SystemExit as e:
        usage = e.__context__  # typer exits inside its handler of the click error; a usage error's exit code is 2
        if wanted and not out.json_printed and isinstance(usage, typer.TyperException) and e.code == 2:
            print_error_json(usage.format_message())
        raise


@contextlib.contextmanager
def json_errors(as_json: bool, **fields: object) -> Iterator[None]:
    """With ``--json``, an error that stops the command prints the error document with ``fields`` too (what the
    command found before the error; without fields, :func:`error_documents` prints it)."""
    try:
        yield
    except (MeshbridgeError, OSError) as e:
        if as_json:
            print_error_json(error_message(e), **fields)
        raise


def print_error_json(message: str, **fields: object) -> None:
    """The ``--json`` document of a command that an error stopped (exit 2): ``fields`` (what it did before, if
    anything) and ``"error": {"message": ..., "exit_code": 2}``; the error line goes to stderr as without --json."""
    print_json({**fields, "error": {"message": message, "exit_code": EXIT_INPUT_ERROR}})


T = TypeVar("T")


def _parsed_by(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A typer parser from a function that raises ``ValueError``: the message is shown as it is (typer would
    prefix pydantic's 'Value error, ')."""

    def parser(value: str) -> T:
        try:
            return parse(value)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None

    return parser


ProxyConfigKind = Annotated[
    Kind,
    typer.Argument(
        parser=_parsed_by(proxy_config_kind),
        metavar="KIND",
        help="routes, clusters, listeners or secret (istioctl's singulars and r/c/l/s too).",
    ),
]


class ProxyConfigFormat(StrEnum):
    """``proxy-config -o``: istioctl's table fitted to a terminal, its full width, or Envoy's whole
    ``/config_dump``."""

    short = "short"
    wide = "wide"
    json = "json"


def _output_format(value: str) -> ProxyConfigFormat:
    try:
        return ProxyConfigFormat(value.lower())
    except ValueError:
        raise ValueError(f"{value!r} is not an output format; use short, wide or json") from None


ProxyConfigOutput = Annotated[
    ProxyConfigFormat,
    typer.Option(
        "-o",
        "--output",
        parser=_parsed_by(_output_format),
        metavar="FORMAT",
        help="short (a table, as istioctl, fitted to 100 columns), wide (istioctl's own layout, every column) "
        "or json (the whole /config_dump).",
    ),
]


def read_bridge(path: Path) -> Bridge:
    """Load the bridge file; errors propagate as ``SpecError`` and are printed by ``main``. A mesh on an Istio
    release newer than every line meshbridge knows gets a note on stderr (it is modelled as the newest)."""
    bridge = load_bridge(path)
    for name, mesh in bridge.spec.meshes.items():
        if newer_than_known(mesh.istio.version):
            err.print(
                f"note: mesh {name} declares Istio {mesh.istio.version}, newer than the releases meshbridge knows "
                f"({', '.join(SUPPORTED_LINES)}): it is modelled as {SUPPORTED_LINES[-1]} (docs/fidelity.md, Versions)",
                markup=False,
                highlight=False,
            )
    return bridge


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned table with an upper-case header, like kubectl's: never wrapped, so it pipes and greps."""
    return format_table([list(columns), *rows]).rstrip("\n")


# -- the state folder, the local twin, the clusters, the seed --------------------------------------------------------

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Where certificates live. Default: .meshbridge/ beside the bridge file."),
]


def store_for(file: Path, state_dir: Path | None) -> PkiStore:
    """The PKI store of the bridge at ``file``."""
    return PkiStore(state_dir or default_state_dir(file))


Manifests = Annotated[
    list[str] | None,
    typer.Option(
        "--manifests",
        metavar="MESH=PATH",
        help="MESH=PATH: run your own Istio YAML (file or folder) for that mesh instead of the rendered documents; "
        "${VAR} references are expanded from the environment. Repeatable.",
    ),
]


def parse_headers(values: list[str], *, reserved: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Each ``-H 'Name: value'`` as ``(name, value)``, stripped.

    Raises:
        LocalError: one has no ``:``, names a header of ``reserved`` (one the command sets itself), or cannot be sent
            (:func:`meshbridge.local.curl.check_headers`).
    """
    headers = []
    for h in values:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise LocalError(f"-H {h!r}: write 'Name: value'")
        if name.strip().lower() in reserved:
            raise LocalError(f"-H {h!r}: the checks set {name.strip()} themselves ({', '.join(reserved)}); drop it")
        headers.append((name.strip(), value.strip()))
    check_headers(headers)
    return headers


def parse_manifests(values: list[str] | None) -> dict[str, list[Path]]:
    """``["eks=a.yaml", "eks=b/"]`` → ``{"eks": [a.yaml, b/]}``; a value without ``=`` is an error."""
    out: dict[str, list[Path]] = {}
    for v in values or []:
        mesh, sep, path = v.partition("=")
        if not sep or not mesh or not path:
            raise LocalError(f"--manifests {v!r}: write MESH=PATH, e.g. --manifests eks=examples/article/eks.yaml")
        out.setdefault(mesh, []).append(Path(path))
    return out


CERT_KEYS = ("cert", "key", "cacert", "crl", "tls.crt", "tls.key", "ca.crt", "ca.crl")
"""The Secret keys ``--cert`` takes, those istiod reads: the generic layout and the kubernetes.io/tls one."""
CERT_FORMS = "MESH[/NAMESPACE/NAME]:KEY=FILE (a key of a gateway Secret) or [MESH:]PATH=FILE (a file a manifest names)"
"""The two forms of a ``--cert`` value, as its errors name them."""

_SECRET_KEY = re.compile(
    r"^(?P<mesh>[a-z0-9-]+)(/(?P<ns>[a-z0-9-]+)/(?P<name>[a-z0-9.-]+))?:(?P<key>[A-Za-z0-9._-]+)=(?P<file>.+)$"
)
_POD_PATH = re.compile(r"^((?P<mesh>[a-z0-9-]+):)?(?P<path>/[^=]+)=(?P<file>.+)$")


def parse_cert(value: str) -> SecretFile | MountedFile:
    """One ``--cert`` value, with the file it names read.

    Two forms: ``MESH[/NAMESPACE/NAME]:KEY=FILE`` puts a PEM file into a gateway Secret under ``KEY`` (one of
    :data:`CERT_KEYS`, like ``kubectl create secret generic --from-file=KEY=FILE``); ``[MESH:]PATH=FILE``, whose
    key part starts with ``/``, gives the file a Gateway or DestinationRule names by its path in the pod
    (``serverCertificate``, ``clientCertificate``, ``privateKey``, ``caCertificates``, ``caCrl``).

    Raises:
        IstioConfigError: the value has neither form, the key is not one istiod reads, or the file cannot be read.
    """
    path_form = _POD_PATH.match(value)
    secret_form = None if path_form else _SECRET_KEY.match(value)
    m = path_form or secret_form
    if m is None:
        raise IstioConfigError(
            f"--cert {value!r}: expected {CERT_FORMS}, e.g. --cert gke:cert=client.crt or --cert "
            "/etc/istio/egressgateway-certs/tls.crt=client.crt"
        )
    if secret_form is not None and m["key"] not in CERT_KEYS:
        raise IstioConfigError(
            f"--cert {value!r}: {m['key']!r} is not a Secret key lint reads. Fix: use one of "
            f"{', '.join(CERT_KEYS)} (cert, key, cacert, crl: a generic Secret; tls.*, ca.*: kubernetes.io/tls), or "
            "a path in the pod that starts with /"
        )
    file = Path(m["file"])
    try:
        data = file.read_bytes()
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise IstioConfigError(f"--cert {value!r}: cannot read {file} ({reason}). Fix: point it at a PEM file") from e
    if path_form is not None:
        return MountedFile(m["path"], data, m["mesh"], str(file))
    return SecretFile(m["mesh"], m["key"], data, m["ns"], m["name"], str(file))


def again(file: Path, state_dir: Path | None) -> str:
    """The options that chose the twin, as the user gave them, for every hint to repeat: ``-f FILE`` unless
    it is the default, ``--state-dir DIR`` when given (``""`` when neither)."""
    words = ["-f", str(file)] if file != DEFAULT_BRIDGE else []
    words += ["--state-dir", str(state_dir)] if state_dir is not None else []
    return "".join(f" {shlex.quote(w)}" for w in words)


def twin_for(file: Path, state_dir: Path | None) -> LocalTwin:
    """The local twin of the bridge at ``file``; warns on stderr when the bridge file or the manifests changed
    since the running twin's 'local up'."""
    twin = LocalTwin(read_bridge(file), file, state_dir or default_state_dir(file), again(file, state_dir))
    warn_changed(twin)
    return twin


def warn_changed(twin: TwinState) -> None:
    """Say on stderr which inputs of the running twin changed since 'local up' (it still runs the old ones)."""
    for line in twin.changed_inputs():
        err.print(f"warning: {line}", markup=False, highlight=False)


EXIT_CLUSTER_UNREAD = 2
"""Exit status of every cluster command when a cluster cannot be reached or read (the kubeconfig, the context,
the API server, the credentials, a request that failed): the command could not do its job, as for any other
``MeshbridgeError``. 1 is kept for a cluster that was read and is not as it should be."""

Contexts = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        metavar="MESH=CONTEXT",
        help=(
            "kubeconfig context of a mesh, overriding spec.meshes.<mesh>.context. Repeat for each mesh. "
            "MESH=@in-cluster: the cluster this Pod runs in, as its service account (KUBERNETES_SERVICE_HOST/PORT, "
            "the token and ca.crt under /var/run/secrets/kubernetes.io/serviceaccount); no kubeconfig is read for it."
        ),
    ),
]


SEED_FILES = ("bridge.yaml", "handler.py")


def seed_text(name: str) -> str:
    """The text of a seed file shipped in the package (``bridge.yaml`` or ``handler.py``)."""
    return resources.files("meshbridge").joinpath("data", "seed", name).read_text(encoding="utf-8")
