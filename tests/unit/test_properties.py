"""Property tests (hypothesis) for every parser of user input: whatever comes in, only our own errors go out.

Spec YAML, PEM bundles and keys, Secret and other Istio documents, ``${VAR}`` expansion and CLI values:
each either parses or raises the layer's ``MeshbridgeError`` subclass, never a library exception or a crash
(research S24; Envoy's fuzzing practice, corpus kept as regression examples via ``@example``).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from meshbridge.errors import IstioConfigError, KubeError, LocalError, PkiError, SpecError
from meshbridge.istio.parse import build_config, expand_env, parse_yaml_text
from meshbridge.kube import parse_context_overrides
from meshbridge.pki import CertBundle
from meshbridge.pki.x509 import issue_ca, key_matches, parse_certificates
from meshbridge.spec import parse_bridge
from tests.builders import seed_dict

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=30)
)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


SEED = seed_dict()
SEED_PATHS = [p for p in _paths(SEED) if p]


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
    except IstioConfigError as e:
        assert "is not set" in str(e)
    else:
        assert "${" not in out or not any(f"${{{k}}}" in out for k in env)


@FAST
@given(st.lists(st.text(max_size=20), max_size=4))
def test_cli_mesh_values_parse_or_raise_our_errors(values: list[str]) -> None:
    from meshbridge.cli.local_cmd import parse_manifests

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
