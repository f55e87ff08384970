"""Property tests (hypothesis) for every parser of user input: whatever comes in, only our own errors go out.

Spec YAML, PEM bundles and keys, Secret and other Istio documents, ``${VAR}`` expansion and CLI values:
each either parses or raises the layer's ``MeshbridgeError`` subclass, never a library exception or a crash
(in the spirit of Envoy's fuzzing practice; the corpus is kept as regression examples via ``@example``).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from meshbridge.errors import IstioConfigError, KubeError, LocalError, MeshbridgeError, PkiError, SpecError
from meshbridge.istio.parse import build_config, expand_env, parse_yaml_text
from meshbridge.kube import parse_context_overrides
from meshbridge.pki import CertBundle, PkiStore
from meshbridge.pki.identities import client_leaf
from meshbridge.pki.x509 import (
    issue_ca,
    issue_crl,
    issue_leaf,
    key_matches,
    parse_certificates,
    parse_crl,
    revoked_serials,
)
from meshbridge.spec import parse_bridge
from tests.builders import SEED as SEED_FILE
from tests.builders import issued_store, seed_bridge, seed_dict, tree_paths

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=30)
)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


SEED = seed_dict()
SEED_PATHS = [p for p in tree_paths(SEED) if p]


@FAST
@given(st.text(max_size=400))
@example("apiVersion: [")
@example("\x00")
@example("--- !!python/object:os.system ls")
def test_spec_text_parses_or_raises_spec_error(text: str) -> None:
    with contextlib.suppress(SpecError):
        parse_bridge(text, "fuzz.yaml")


@FAST
@given(st.sampled_from(SEED_PATHS), json_like, st.booleans())
def test_spec_mutations_parse_or_raise_spec_error(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    doc = copy.deepcopy(SEED)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        parse_bridge(yaml.safe_dump(doc), "fuzz.yaml")
    except SpecError as e:
        assert e.issues, "a SpecError always lists its issues"
        assert all(i.fix for i in e.issues), "every issue names a fix"


CA = issue_ca("fuzz CA")


@FAST
@given(st.binary(max_size=300))
@example(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
def test_pem_bundles_parse_or_raise_pki_error(data: bytes) -> None:
    with contextlib.suppress(PkiError):
        parse_certificates(data)
    with contextlib.suppress(PkiError):
        CertBundle(data).cert  # noqa: B018


@FAST
@given(st.binary(max_size=300))
@example(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
def test_private_keys_parse_or_raise_pki_error_without_echo(data: bytes) -> None:
    try:
        key_matches(CA.cert, data)
    except PkiError as e:
        assert data.decode("latin-1")[40:80] not in str(e) or len(data) < 80


def _doc(kind: str, api: str, spec: Any, extra: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec, **extra}


@FAST
@given(
    st.sampled_from(["Gateway", "VirtualService", "DestinationRule", "ServiceEntry"]),
    st.sampled_from(["networking.istio.io/v1", "networking.istio.io/v1beta1"]),
    json_like,
)
def test_istio_documents_parse_or_raise_istio_config_error(kind: str, api: str, spec: Any) -> None:
    with contextlib.suppress(IstioConfigError):
        build_config([("fuzz", _doc(kind, api, spec, {}))])


@FAST
@given(st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=4), json_like)
@example({"cert": "not base64!!"}, None)
def test_secret_documents_parse_or_raise_istio_config_error(data: dict[str, str], string_data: Any) -> None:
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}, "data": data}
    if string_data is not None:
        doc["stringData"] = string_data
    with contextlib.suppress(IstioConfigError):
        build_config([("fuzz", doc)])


@FAST
@given(st.text(max_size=300))
def test_manifest_text_parses_or_raises_istio_config_error(text: str) -> None:
    with contextlib.suppress(IstioConfigError):
        build_config(parse_yaml_text(text, "fuzz.yaml"))


@FAST
@given(
    st.text(max_size=120),
    st.dictionaries(st.from_regex(r"[A-Z_]{1,6}", fullmatch=True), st.text(max_size=8), max_size=3),
)
def test_env_expansion_expands_or_names_the_missing_variable(text: str, env: dict[str, str]) -> None:
    try:
        out = expand_env(text, env, "fuzz.yaml")
    except IstioConfigError as e:  # an unset variable, or a ${VAR...} form: the line and the fix, always
        assert str(e).startswith("fuzz.yaml:") and "Fix: export " in str(e)
    else:
        if "\\" in text or any("$" in v or "\n" in v or "#" in v for v in env.values()):
            return  # escapes and values that hold references or lines: the examples in test_manifest_reading
        code = [line for line in out.splitlines() if not line.lstrip().startswith("#")]  # comments stay as written
        assert not any(f"${{{k}}}" in line for line in code for k in env)


@FAST
@given(st.lists(st.text(max_size=20), max_size=4))
def test_cli_mesh_values_parse_or_raise_our_errors(values: list[str]) -> None:
    from meshbridge.cli.common import parse_manifests

    try:
        parsed = parse_manifests(values)
    except LocalError:
        pass
    else:
        assert sum(len(v) for v in parsed.values()) == len(values)
    with contextlib.suppress(KubeError):
        parse_context_overrides(values)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "render",
                "--mesh",
                "eks",
                "-o",
                "--no-secrets",
                "certs",
                "show",
                "lint",
                "local",
                "status",
                "-f",
                "x.yaml",
                "--bogus",
                "translate",
                "--list",
                "verify",
                "=",
                "",
            ]
        ),
        max_size=5,
    )
)
def test_cli_never_shows_a_traceback(args: list[str]) -> None:
    from meshbridge.cli.main import main

    assert isinstance(main(args), int)


# -- lint's --cert and --mesh values, lint's PEM parsing, CRLs, certs revoke --serial, certs import ----------------
#
# Each parser is fed arbitrary input and structured near-misses (real PEM blocks with damaged bodies, files of
# arbitrary bytes). Each must return its result or raise the project's own error, never a traceback.

BRIDGE = seed_bridge()
# the material the strategies are built from, made in memory: nothing is written while the module is collected
CA_GKE = issue_ca("meshbridge gke CA", organization="meshbridge lambda-aws-to-gcp gke")
_CLIENT = client_leaf(BRIDGE, "gke")
assert _CLIENT is not None
LEAF = issue_leaf(CA_GKE, "client", common_name=_CLIENT.common_name, uris=_CLIENT.uris)
assert LEAF.key_pem is not None
CRL_PEM = issue_crl(CA_GKE, [0x1234])
_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\n(.*?)\n-----END \1-----\n?", re.S)


def _der(pem: bytes) -> bytes:
    m = _BLOCK.search(pem)
    assert m is not None
    return base64.b64decode(m[2])


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()


@st.composite
def damaged_der(draw: st.DrawFn, der: bytes) -> bytes:
    """``der`` with a few bytes overwritten, cut short or extended: parses at first, fails deep inside."""
    data = bytearray(der)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=8)) if draw(st.booleans()) else bytes(data)


def pem_inputs(label: str, der: bytes) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, a ``label`` PEM block of random bytes, or of a damaged real object, maybe doubled."""
    block = st.one_of(st.binary(max_size=120), damaged_der(der)).map(lambda d: _pem(label, d))
    return st.one_of(
        st.binary(max_size=300),
        block,
        st.tuples(block, st.binary(max_size=20), block).map(lambda t: t[0] + t[1] + t[2]),
        st.just(_pem(label, der)),
    )


def _mesh_value(value: str) -> tuple[str, str]:
    from meshbridge.cli.lint_cmd import _input

    try:
        _input(None, [value], [], 30, None)
    except MeshbridgeError as e:
        assert str(e)
        return "error", str(e)
    return "parsed", ""


@FAST
@given(st.text(max_size=60))
@example("eks")
@example("=x")
@example("eks=")
@example("eks=/no/such/file.yaml")
@example("eks=a\x00b")
def test_lint_mesh_values_parse_or_raise_our_errors(value: str) -> None:
    name, sep, where = value.partition("=")
    # an existing path would be read (maybe this whole machine): files are the next property's business
    assume(not (sep and name and where and Path(where).exists()))
    outcome, message = _mesh_value(value)
    assert outcome == "error"
    assert ("expected NAME=PATH" in message) == (not (sep and name and where))


def _lint_folder(contents: list[bytes]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="mb-lint-"))
    for i, data in enumerate(contents):
        (folder / f"m{i}.yaml").write_bytes(data)
    return folder


yaml_documents = st.lists(json_like, min_size=1, max_size=3).map(lambda docs: yaml.safe_dump_all(docs).encode())


@FAST
@given(st.lists(st.one_of(st.text(max_size=200).map(str.encode), yaml_documents), max_size=3), st.booleans())
@example([b"apiVersion: [\n"], False)
@example([b"kind: Secret\n"], True)
def test_lint_mesh_files_parse_or_raise_our_errors(contents: list[bytes], one_file: bool) -> None:
    """UTF-8 files of any content, given as a folder or as one file: lint reads them or says why not."""
    folder = _lint_folder(contents)
    try:
        target = folder / "m0.yaml" if one_file and contents else folder
        _mesh_value(f"gke={target}")
    finally:
        shutil.rmtree(folder)


def test_lint_mesh_file_that_is_not_utf8_is_named_in_the_error() -> None:
    folder = _lint_folder([b"\xff\xfe kind: Gateway\n"])
    try:
        outcome, message = _mesh_value(f"gke={folder}")
    finally:
        shutil.rmtree(folder)
    assert outcome == "error" and "m0.yaml: not UTF-8 text" in message and "Fix:" in message


def test_lint_mesh_folder_named_like_a_yaml_file_is_walked_not_read() -> None:
    folder = _lint_folder([])
    (folder / "sub.yaml").mkdir()
    (folder / "sub.yaml" / "m.yaml").write_bytes(b"apiVersion: [\n")
    try:
        outcome, message = _mesh_value(f"gke={folder}")
    finally:
        shutil.rmtree(folder)
    assert outcome == "error" and "sub.yaml/m.yaml" in message  # the file inside was read (and is bad YAML)


# a PEM file and a folder, in pytest's temporary directory: the values name them through these placeholders
_CERT_FILE, _FOLDER = "@CERT_FILE@", "@FOLDER@"


@pytest.fixture(scope="module")
def cert_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("lint-cert") / "cert.pem"
    file.write_bytes(LEAF.cert_pem)
    return file


_NAMES = st.from_regex(r"[a-z0-9.-]{1,8}", fullmatch=True)
cert_values = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda mesh, where, key, file: f"{mesh}{where}:{key}={file}",
        st.one_of(_NAMES, st.text(max_size=6)),
        st.one_of(st.just(""), st.builds(lambda a, b: f"/{a}/{b}", _NAMES, _NAMES), st.text(max_size=8)),
        st.one_of(st.sampled_from(["cert", "key", "cacert", "tls.crt", "tls.key", "ca.crt"]), st.text(max_size=6)),
        st.one_of(st.just(_CERT_FILE), st.just(_FOLDER), st.text(max_size=12)),
    ),
    st.builds(  # the path form: [MESH:]PATH=FILE
        lambda mesh, path, file: f"{mesh}{path}={file}",
        st.one_of(st.just(""), st.builds(lambda m: f"{m}:", _NAMES), st.text(max_size=6)),
        st.one_of(st.builds(lambda a, b: f"/{a}/{b}", _NAMES, _NAMES), st.text(max_size=8)),
        st.one_of(st.just(_CERT_FILE), st.just(_FOLDER), st.text(max_size=12)),
    ),
)


@FAST
@given(value=cert_values)
@example(value="gke:cert=" + _CERT_FILE)
@example(value="gke/istio-egress/mtls-credential:cacert=" + _CERT_FILE)
@example(value="gke:cert=" + _FOLDER)
@example(value="GKE:cert=x")
@example(value="/etc/istio/egressgateway-certs/tls.crt=" + _CERT_FILE)
@example(value="gke:/etc/istio/egressgateway-certs/tls.key=" + _CERT_FILE)
@example(value="etc/istio/tls.crt=" + _CERT_FILE)
def test_cert_values_parse_or_raise_istio_config_error(cert_file: Path, value: str) -> None:
    from meshbridge.cli.common import parse_cert
    from meshbridge.istio.files import MountedFile

    value = value.replace(_CERT_FILE, str(cert_file)).replace(_FOLDER, str(cert_file.parent))
    file = value.partition("=")[2]
    assume(not file or not Path(file).exists() or Path(file).is_dir() or file == str(cert_file))
    try:
        given = parse_cert(value)
    except IstioConfigError as e:
        assert str(e).startswith(f"--cert {value!r}: ")
    else:
        if isinstance(given, MountedFile):
            assert given.path.startswith("/") and value.endswith(f"{given.path}={given.source}")
            assert given.option == f"--cert {value}"
        else:
            assert given.mesh and value.startswith(given.mesh) and value.endswith(f":{given.key}={given.source}")
            assert (given.namespace is None) == (given.name is None)
        assert given.data == Path(given.source).read_bytes()


def test_cert_value_with_a_nul_byte_raises_istio_config_error() -> None:
    from meshbridge.cli.common import parse_cert

    for value in ("gke:cert=client\x00.crt", "/etc/istio/tls.crt=client\x00.crt"):
        with pytest.raises(IstioConfigError):
            parse_cert(value)


@FAST
@given(pem_inputs("CERTIFICATE", LEAF.cert.public_bytes(serialization.Encoding.DER)))
@example(b"")
@example(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
def test_lint_parse_pem_returns_certificates_or_a_reason(pem: bytes) -> None:
    from meshbridge.lint.certificates import parse_pem

    certs, reason = parse_pem(pem)
    assert (certs == ()) == (reason is not None)
    assert reason is None or reason.strip()
    assert all(isinstance(c, x509.Certificate) for c in certs)


CRL_DER = _der(CRL_PEM)


@FAST
@given(pem_inputs("X509 CRL", CRL_DER), st.booleans())
@example(CRL_PEM, True)
@example(CRL_PEM + b"-----BEGIN X509 CRL-----\n", False)
@example(b"-----BEGIN X509 CRL-----" * 2, False)
def test_crls_parse_or_raise_pki_error(pem: bytes, with_issuer: bool) -> None:
    try:
        crl = parse_crl(pem, "fuzz.crl", CA_GKE if with_issuer else None)
        listed = [r.serial_number for r in crl]
    except PkiError as e:
        assert str(e).startswith("fuzz.crl: ")
    else:
        assert all(isinstance(s, int) for s in listed)
    try:
        serials = revoked_serials(pem, "fuzz bundle")
    except PkiError as e:
        assert str(e).startswith("fuzz bundle: ")
    else:
        assert all(isinstance(s, int) and s > 0 for s in serials)
        if pem == CRL_PEM:
            assert serials == [0x1234]


# certs revoke --serial: through the CLI (--force: any serial, not only those of the store), on a bridge of its own
_HEX = re.compile(r"(0x)?[0-9a-f:]+")


@pytest.fixture(scope="module")
def revoking(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the seed bridge and its issued store (``state``), in pytest's temporary directory."""
    folder = tmp_path_factory.mktemp("revoke")
    (folder / "bridge.yaml").write_text(SEED_FILE.read_text())
    issued_store(folder, BRIDGE)
    return folder


def _revoke(folder: Path, serial: str) -> int:
    from meshbridge.cli.main import main

    file, state = str(folder / "bridge.yaml"), str(folder / "state")
    return main(["certs", "revoke", "--mesh", "gke", "--serial", serial, "--force", "-f", file, "--state-dir", state])


serial_values = st.one_of(
    st.text(max_size=24),
    st.from_regex(r"(0x|0X)?[0-9a-fA-F:]{1,39}", fullmatch=True),
    st.integers(1, 2**156).map(lambda n: f"{n:x}"),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(serial=serial_values)
@example(serial="0x")
@example(serial=":")
@example(serial="-1")
@example(serial="0")
@example(serial="3f:2a:9c")
@example(serial="f" * 39)
def test_certs_revoke_serial_is_hex_or_refused(revoking: Path, serial: str) -> None:
    digits = serial.lower().removeprefix("0x").replace(":", "")
    code = _revoke(revoking, serial)
    assert code in (0, 2)
    if _HEX.fullmatch(serial.lower()) and digits and 0 < int(digits, 16) < 2**159:
        assert code == 0
        assert int(digits, 16) in PkiStore(revoking / "state").revoked("gke")
    elif not digits or not all(c in "0123456789abcdef_ \t\n" for c in digits):
        assert code == 2


def test_certs_revoke_serial_of_160_bits_is_refused(revoking: Path) -> None:
    assert _revoke(revoking, "f" * 40) == 2


@pytest.fixture(scope="module")
def importing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the seed's issued store (``seed/state``), copied for each example."""
    folder = tmp_path_factory.mktemp("import")
    issued_store(folder / "seed", BRIDGE)
    return folder


CA_KEY = CA_GKE.key_pem


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    slot=st.sampled_from(["ca", "server", "client"]),
    mesh=st.sampled_from(["eks", "gke", "aws"]),
    cert=pem_inputs("CERTIFICATE", LEAF.cert.public_bytes(serialization.Encoding.DER)),
    key=st.one_of(st.none(), st.binary(max_size=200), st.just(LEAF.key_pem), st.just(CA_KEY)),
)
@example(slot="client", mesh="gke", cert=LEAF.cert_pem, key=b"garbage")
@example(slot="ca", mesh="gke", cert=LEAF.cert_pem, key=None)
@example(slot="client", mesh="gke", cert=LEAF.cert_pem + b"\n" + LEAF.cert_pem, key=LEAF.key_pem)
def test_certs_import_of_any_bytes_stores_or_raises_pki_error(
    importing: Path, slot: str, mesh: str, cert: bytes, key: bytes | None
) -> None:
    state = Path(tempfile.mkdtemp(dir=importing))
    shutil.copytree(importing / "seed" / "state", state / "state")
    store = PkiStore(state / "state")
    before = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}
    try:
        stored, findings = store.import_(BRIDGE, mesh, slot, CertBundle(cert, key), name="fuzz.pem")  # type: ignore[arg-type]
    except PkiError as e:
        assert str(e)
        after = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}
        assert after == before, "a refused import writes nothing"
    else:
        if any(f.severity == "error" for f in findings):
            assert {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()} == before
        else:
            assert store.load(mesh, slot) == stored  # type: ignore[arg-type]
    finally:
        shutil.rmtree(state)
