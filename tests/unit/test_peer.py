"""Two owners who never share keys: ``meshbridge peer offer / accept / admit`` and the one-side spec."""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshbridge.cli.main import main
from meshbridge.errors import PkiError, SpecError
from meshbridge.peer import make_offer, read_offer, read_reply, reply_problems
from meshbridge.pki import PkiStore
from meshbridge.pki.signing import fingerprint
from meshbridge.pki.x509 import issue_ca, parse_certificates, utcnow
from meshbridge.spec import load_bridge
from tests.builders import bridge_from, tree_paths
from tests.peer_support import Owners, accept, exchange, offer, one_side, two_owners


@pytest.fixture
def owners(tmp_path: Path) -> Owners:
    return two_owners(tmp_path)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _secret_cacert(owners: Owners, side: Path, mesh: str) -> list[str]:
    """The subjects of the CAs the rendered gateway Secret of ``mesh`` trusts (``render -o``)."""
    out = side.parent / "out"
    assert main(["render", "-f", str(side), "-o", str(out)]) == 0
    (secret,) = (out / mesh).glob("*-secret-*.yaml")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    data = yaml.safe_load(secret.read_text())["data"]
    return sorted(c.subject.rfc4514_string() for c in parse_certificates(base64.b64decode(data["cacert"])))


# -- the flow ------------------------------------------------------------------------------------------------


def test_each_owner_keeps_only_its_own_keys_and_trusts_the_others_ca(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange(owners, capsys)
    exp, imp = owners.state(owners.exporter), owners.state(owners.importer)
    assert _files(exp / "pki") == [
        "eks/ca.crt", "eks/ca.key", "eks/server.crt", "eks/server.key", "gke/ca.crt", "gke/ca.peer",
    ]  # fmt: skip
    assert _files(imp / "pki") == [
        "eks/ca.crt", "eks/ca.peer", "gke/ca.crt", "gke/ca.key", "gke/client.crt", "gke/client.key",
    ]  # fmt: skip
    for key in [*exp.rglob("*.key"), *imp.rglob("*.key")]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert (exp / "pki/gke/ca.crt").read_bytes() == (imp / "pki/gke/ca.crt").read_bytes()
    assert (imp / "pki/eks/ca.crt").read_bytes() == (exp / "pki/eks/ca.crt").read_bytes()
    for sent in (owners.offer, owners.reply):
        text = sent.read_text()
        assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" in text
    gke_ca = PkiStore(imp).load("gke", "ca")
    eks_ca = PkiStore(exp).load("eks", "ca")
    assert gke_ca is not None and eks_ca is not None
    assert _secret_cacert(owners, owners.exporter, "eks") == [gke_ca.subject]
    assert _secret_cacert(owners, owners.importer, "gke") == [eks_ca.subject]
    assert not (owners.exporter.parent / "out" / "gke").exists()  # a peer's documents are its owner's


def test_without_admit_the_exporter_cannot_render_its_gateway_secret(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    accept(owners, capsys, offer(owners, capsys))
    assert main(["render", "-f", str(owners.exporter), "-o", str(owners.root / "out")]) == 2
    message = capsys.readouterr().err
    assert "mesh 'gke' is a peer (another owner's) whose CA is not trusted yet" in message
    assert "the exporter 'meshbridge peer admit REPLY --fingerprint SHA256'" in message
    assert main(["certs", "check", "-f", str(owners.exporter)]) != 0
    assert "gke/ca        is a peer's CA, not trusted yet" in capsys.readouterr().out


def test_certs_issue_in_a_one_side_folder_issues_nothing_for_the_peer(owners: Owners) -> None:
    assert not (owners.state(owners.exporter) / "pki" / "gke").exists()
    assert not (owners.state(owners.importer) / "pki" / "eks").exists()
    single = owners.root / "single" / "bridge.yaml"  # its twin: one owner of both meshes issues both CAs
    single.parent.mkdir()
    d = one_side("gke")
    del d["spec"]["meshes"]["gke"]["peer"]  # type: ignore[index]
    single.write_text(yaml.safe_dump(d))
    assert main(["certs", "issue", "-f", str(single)]) == 0
    assert {p.parent.name for p in (owners.state(single) / "pki").rglob("ca.key")} == {"eks", "gke"}


def test_the_offer_carries_the_exports_the_address_the_accepted_identity_and_an_expiry(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    before = utcnow()
    pinned = offer(owners, capsys, "--valid-for", "2")
    after = utcnow()
    doc = yaml.safe_load(owners.offer.read_text())
    assert (doc["kind"], doc["signature"]["algorithm"]) == ("PeeringOffer", "ECDSA-SHA256")
    assert doc["spec"]["exports"] == [{"name": "lambda", "host": "lambda.external", "gatewayPort": 443, "to": ["gke"]}]
    assert doc["spec"]["exporter"]["address"] == "ingress.eks.example.com"
    assert doc["spec"]["accepts"] == [
        {"mesh": "gke", "identity": "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"}
    ]
    got = read_offer(doc, pinned, before)
    # made between before and after, two hours on, written to the second
    assert before - dt.timedelta(seconds=1) < got.expires - dt.timedelta(hours=2) <= after
    assert stat.S_IMODE(owners.offer.stat().st_mode) == 0o644  # a certificate, no secret


def test_an_offer_never_outlives_the_ca_that_signs_it(owners: Owners, capsys: pytest.CaptureFixture[str]) -> None:
    pinned = offer(owners, capsys, "--valid-for", "100000")  # about eleven years
    doc = yaml.safe_load(owners.offer.read_text())
    ca = PkiStore(owners.state(owners.exporter)).load("eks", "ca")
    assert ca is not None
    got = read_offer(doc, pinned, utcnow())
    assert got.expires <= ca.not_after  # written to the second: the CA's own end
    assert got.expires > ca.not_after - dt.timedelta(seconds=1)


# -- refusals ------------------------------------------------------------------------------------------------


def test_a_tampered_offer_is_refused_and_nothing_is_trusted(owners: Owners, capsys: pytest.CaptureFixture[str]) -> None:
    pinned = offer(owners, capsys)
    owners.offer.write_text(owners.offer.read_text().replace("host: lambda.external", "host: evil.external"))
    args = ["peer", "accept", str(owners.offer), "--fingerprint", pinned, "-f", str(owners.importer)]
    assert main([*args, "-o", str(owners.reply)]) == 2
    message = capsys.readouterr().err
    assert "tampered: its signature (ECDSA-SHA256) does not match its content" in message
    assert "Fix: ask the exporter's owner for a new file; do not edit it" in message
    assert not (owners.state(owners.importer) / "pki" / "eks").exists() and not owners.reply.exists()


def test_an_expired_offer_is_refused(owners: Owners, capsys: pytest.CaptureFixture[str]) -> None:
    pinned = offer(owners, capsys)
    doc = yaml.safe_load(owners.offer.read_text())
    expires = read_offer(doc, pinned, utcnow()).expires  # the twin: read before its expiry, it passes
    with pytest.raises(PkiError) as refused:
        read_offer(doc, pinned, expires, "offer.yaml")
    assert str(refused.value).startswith(f"offer.yaml: expired at {expires:%Y-%m-%dT%H:%M:%SZ}")
    assert "Fix: ask the exporter's owner for a new offer ('meshbridge peer offer')" in str(refused.value)


def test_an_offer_signed_by_another_ca_than_the_pinned_one_is_refused(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    offer(owners, capsys)
    other = fingerprint(PkiStore(owners.state(owners.importer)).require_ca("gke"))
    args = ["peer", "accept", str(owners.offer), "--fingerprint", other.upper(), "-f", str(owners.importer)]
    assert main([*args, "-o", str(owners.reply)]) == 2
    message = capsys.readouterr().err
    assert f"not the {other} you were told: it is not the exporter's CA you expect" in message
    assert not (owners.state(owners.importer) / "pki" / "eks").exists()


def test_a_malformed_fingerprint_says_the_form(owners: Owners, capsys: pytest.CaptureFixture[str]) -> None:
    offer(owners, capsys)
    args = ["peer", "accept", str(owners.offer), "--fingerprint", "abc", "-f", str(owners.importer)]
    assert main([*args, "-o", str(owners.reply)]) == 2
    assert "fingerprint 'abc' is not a SHA-256 fingerprint" in capsys.readouterr().err


def test_an_offer_that_differs_from_the_importers_spec_names_the_field(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned = offer(owners, capsys)
    owners.importer.write_text(owners.importer.read_text().replace("ingress.eks.example.com", "old.eks.example.com"))
    args = ["peer", "accept", str(owners.offer), "--fingerprint", pinned, "-f", str(owners.importer)]
    assert main([*args, "-o", str(owners.reply)]) == 2
    message = capsys.readouterr().err
    assert (
        "spec.meshes.eks.ingressGateway.address is 'old.eks.example.com'; the offer says 'ingress.eks.example.com'"
    ) in message
    assert "nothing was trusted" in message and not (owners.state(owners.importer) / "pki" / "eks").exists()


def test_a_tampered_reply_is_refused_and_a_reply_to_another_exporter_too(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned = accept(owners, capsys, offer(owners, capsys))
    doc = yaml.safe_load(owners.reply.read_text())
    exporter = load_bridge(owners.exporter)
    own = fingerprint(PkiStore(owners.state(owners.exporter)).require_ca("eks"))
    assert reply_problems(exporter, read_reply(doc, pinned, utcnow()), own) == []  # the twin: it passes
    stranger = "sha256:" + "0" * 64  # the exporter's CA when the offer was made by another one
    assert "another exporter's offer" in reply_problems(exporter, read_reply(doc, pinned, utcnow()), stranger)[0]
    elsewhere = dataclasses.replace(read_reply(doc, pinned, utcnow()), offer_exporter="aks")
    assert (
        "answers an offer from mesh 'aks' to 'gke', which your spec does not export"
        in (reply_problems(exporter, elsewhere, own)[0])
    )
    doc["spec"]["importer"]["identity"] = "spiffe://gke.example.com/ns/default/sa/anyone"
    with pytest.raises(PkiError, match=r"reply\.yaml: tampered: its signature"):
        read_reply(doc, pinned, utcnow(), "reply.yaml")


def test_a_peers_ca_is_never_written_over_an_own_mesh(owners: Owners) -> None:
    store = PkiStore(owners.state(owners.exporter))
    ca = store.require_ca("eks")
    with pytest.raises(PkiError) as refused:
        store.trust_peer(load_bridge(owners.exporter), "eks", ca, None, "x")
    assert "mesh 'eks' is not a peer in the bridge 'lambda-aws-to-gcp' (peers: gke)" in str(refused.value)
    importers = bridge_from(one_side("eks"))  # the importer's spec, pointed at the exporter's folder by mistake
    with pytest.raises(PkiError, match="is a CA key, so this folder owns eks; a peer's CA is never written over it"):
        store.trust_peer(importers, "eks", ca, None, "x")
    assert store.require_ca("eks") == ca


# -- the one-side spec ---------------------------------------------------------------------------------------


def test_a_spec_whose_meshes_are_all_peers_is_refused() -> None:
    d = one_side("gke")
    d["spec"]["meshes"]["eks"]["peer"] = True  # type: ignore[index]
    with pytest.raises(SpecError, match="every mesh is marked 'peer: true', so this owner holds none"):
        bridge_from(d)


def test_render_of_a_peer_mesh_is_refused_and_of_the_own_mesh_works(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange(owners, capsys)
    assert main(["render", "-f", str(owners.importer), "--mesh", "eks"]) == 2
    assert "--mesh 'eks' is marked 'peer: true'" in capsys.readouterr().err
    assert main(["render", "-f", str(owners.importer), "--mesh", "gke"]) == 0
    kinds = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert "DestinationRule" in kinds and "Secret" in kinds


def test_an_offer_needs_the_exporters_address() -> None:
    d = one_side("gke")
    del d["spec"]["meshes"]["eks"]["ingressGateway"]["address"]  # type: ignore[index]
    bridge = bridge_from(d)
    with pytest.raises(SpecError, match=r"ingressGateway.address is unset.*Fix: set spec.meshes.eks.ingressGateway"):
        make_offer(bridge, "eks", "gke", None, None, utcnow())  # type: ignore[arg-type]


def test_lint_of_a_one_side_spec_checks_its_own_mesh_and_says_the_peers_side_was_not_checked(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange(owners, capsys)
    assert main(["lint", "-f", str(owners.importer), "--json"]) == 0
    (found,) = json.loads(capsys.readouterr().out)["findings"]
    assert (found["code"], found["severity"]) == ("MB302", "info")  # the exporter's side is its owner's: not in view
    assert "imported from mesh 'eks', whose manifests are not in the input" in found["message"]
    assert main(["lint", "-f", str(owners.exporter), "--json"]) == 0
    (found,) = json.loads(capsys.readouterr().out)["findings"]  # the same on the exporter's side, as README says
    assert (found["code"], found["severity"]) == ("MB302", "info")
    assert found["message"] == (
        "export 'lambda' (lambda.external) is imported by 'gke', another owner's mesh (peer: true) whose side is not "
        "in view: its ServiceEntry, DestinationRule, egress gateway and client certificate were not checked here"
    )
    assert found["objects"][0]["field"] == "spec.exports[0].to"


def test_lint_before_admit_says_the_peers_ca_is_not_admitted_as_render_does(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    """'certs issue' ran on both sides; the exporter has not admitted the importer's CA yet: MB208 says that, and
    its fix is render's (peer accept / peer admit), not 'never issued'. Its twin: after admit, no MB208."""
    pinned = accept(owners, capsys, offer(owners, capsys))
    assert main(["render", "-f", str(owners.exporter), "--mesh", "eks"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "mesh 'gke' is a peer (another owner's) whose CA is not trusted yet" in said
    assert main(["lint", "-f", str(owners.exporter), "--json"]) == 0
    unrendered = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["code"] == "MB208"]
    assert unrendered and all(
        "which is not rendered because mesh 'gke' is a peer (another owner's) whose CA is not trusted yet"
        in f["message"]
        and "never issued" not in f["message"]
        and "'meshbridge peer admit REPLY --fingerprint SHA256', then lint again" in f["fix"]
        for f in unrendered
    ), unrendered
    assert main(["peer", "admit", str(owners.reply), "--fingerprint", pinned, "-f", str(owners.exporter)]) == 0
    capsys.readouterr()
    assert main(["lint", "-f", str(owners.exporter), "--json"]) == 0
    assert not [f for f in json.loads(capsys.readouterr().out)["findings"] if f["code"] == "MB208"]


def test_a_ca_rollover_reaches_the_peer_as_a_new_offer_with_both_cas_then_the_new_one_alone(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange(owners, capsys)
    exporter, theirs = load_bridge(owners.exporter), PkiStore(owners.state(owners.importer))
    ours = PkiStore(owners.state(owners.exporter))
    old = ours.require_ca("eks")
    ours.rollover(exporter, "eks", 1)  # stage 1: the next CA is issued, peers must trust both
    new = ours.load("eks", "ca-next")
    assert new is not None
    accept(owners, capsys, offer(owners, capsys))  # signed by the current CA: the same fingerprint pins it
    trusted = [c.subject.rfc4514_string() for c in parse_certificates(theirs.trusted("eks"))]
    assert trusted == [old.subject, new.subject]
    ours.rollover(exporter, "eks", 2)
    ours.rollover(exporter, "eks", 3)  # the new CA is the CA; the old one is retired
    pinned = fingerprint(ours.require_ca("eks"))
    assert offer(owners, capsys) == pinned != fingerprint(old)
    accept(owners, capsys, pinned)
    assert [c.subject.rfc4514_string() for c in parse_certificates(theirs.trusted("eks"))] == [new.subject]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(kind="Bridge"), "is not a PeeringOffer"),
        (lambda d: d.pop("signature"), "not a complete PeeringOffer"),
        (lambda d: d.update(spec=["a list"]), "not a complete PeeringOffer"),
        (lambda d: d["signature"].update(value="not base64!"), "not a complete PeeringOffer"),
        (lambda d: d["spec"]["exporter"].update(caCertificate="junk"), "spec.exporter.caCertificate"),
        (lambda d: d["spec"].update(expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)), "tampered"),
        (lambda d: d.pop("metadata"), "tampered"),
        (lambda d: d["signature"].update(algorithm="RSA-SHA256"), "tampered: its signature (RSA-SHA256)"),
    ],
    ids=["kind", "no-signature", "spec-list", "bad-base64", "bad-pem", "unquoted-time", "no-metadata", "algorithm"],
)
def test_a_damaged_offer_is_a_pki_error_never_a_library_exception(
    owners: Owners, capsys: pytest.CaptureFixture[str], change: object, expected: str
) -> None:
    pinned = offer(owners, capsys)
    doc = yaml.safe_load(owners.offer.read_text())
    read_offer(doc, pinned, utcnow())  # the twin: undamaged, it reads
    change(doc)  # type: ignore[operator]
    with pytest.raises(PkiError) as refused:
        read_offer(doc, pinned, utcnow(), "offer.yaml")
    assert expected in str(refused.value)


def test_an_offer_file_that_is_not_yaml_or_missing_is_named(owners: Owners, capsys: pytest.CaptureFixture[str]) -> None:
    owners.offer.write_text("spec: [\n")
    args = ["peer", "accept", str(owners.offer), "--fingerprint", "sha256:" + "0" * 64, "-f", str(owners.importer)]
    assert main(args) == 2
    assert f"{owners.offer}: line 2:" in capsys.readouterr().err
    owners.offer.unlink()
    assert main(args) == 2
    assert f"{owners.offer}: cannot be read (No such file or directory)" in capsys.readouterr().err


def test_the_twin_of_a_one_side_spec_needs_the_peers_documents(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.local.twin import check_manifest_meshes

    assert main(["local", "up", "-f", str(owners.importer)]) == 2
    message = capsys.readouterr().err
    assert "mesh(es) eks of bridge 'lambda-aws-to-gcp' are marked 'peer: true' (another owner's)" in message
    assert "Fix: pass the documents their owner rendered (--manifests eks=PATH)" in message
    check_manifest_meshes(load_bridge(owners.importer), {"eks": [owners.offer]})  # the twin: given them, it passes


def test_the_cluster_commands_never_reach_a_peers_cluster(owners: Owners, capsys: pytest.CaptureFixture[str]) -> None:
    from meshbridge.kube.clusters import resolve_contexts

    # by default a one-side spec's commands reach the owner's own cluster only (on real servers: tests/cluster)
    assert resolve_contexts(load_bridge(owners.importer)) == {"gke": "gke-cluster"}
    for command in (["apply"], ["plan"], ["status"], ["delete"], ["certs", "push"]):  # naming the peer's: refused
        assert main([*command, "-f", str(owners.importer), "--context", "eks=eks-cluster"]) == 2, command
        message = capsys.readouterr().err
        assert (
            "mesh(es) 'eks' are marked 'peer: true': another owner's cluster, which meshbridge never reaches" in message
        )
        assert "Fix: name only your own mesh(es) (gke); the peer's owner runs the same command on their side" in message


def test_certs_rotate_rotates_the_own_mesh_and_refuses_a_peers(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange(owners, capsys)
    store = PkiStore(owners.state(owners.importer))
    before = store.load("gke", "client")
    assert main(["certs", "rotate", "--leaf", "-f", str(owners.importer)]) == 0
    after = store.load("gke", "client")
    assert before is not None and after is not None and after.serial != before.serial
    assert main(["certs", "rotate", "--leaf", "--mesh", "eks", "-f", str(owners.importer)]) == 2
    assert "--mesh eks: another owner's mesh ('peer: true'), whose certificates its owner rotates" in (
        capsys.readouterr().err
    )


# -- whatever a file holds, only meshbridge's own errors come out ---------------------------------------------

_CA = issue_ca("property eks CA")
_OFFER = make_offer(bridge_from(one_side("gke")), "eks", "gke", _CA, None, utcnow() + dt.timedelta(days=1))
_PINNED = fingerprint(_CA)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=30))
_json_like = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([p for p in tree_paths(_OFFER) if p]), _json_like, st.booleans())
def test_any_change_to_an_offer_reads_or_raises_pki_error(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    doc = copy.deepcopy(_OFFER)
    *parents, last = path
    holder = doc
    for key in parents:
        holder = holder[key]
    if delete:
        del holder[last]
    else:
        holder[last] = value
    for read in (read_offer, read_reply):
        with contextlib.suppress(PkiError):
            read(doc, _PINNED, utcnow())


def test_an_offer_to_a_spec_without_the_exporter_as_a_peer_gives_one_fix(
    owners: Owners, capsys: pytest.CaptureFixture[str]
) -> None:
    """The importer's spec does not mark eks 'peer: true': one sentence says what eks needs, one Fix says what to
    do, and nothing is trusted."""
    pinned = offer(owners, capsys)
    spec = yaml.safe_load(owners.importer.read_text())
    spec["spec"]["meshes"]["eks"]["peer"] = False
    owners.importer.write_text(yaml.safe_dump(spec, sort_keys=False))
    args = ["peer", "accept", str(owners.offer), "--fingerprint", pinned, "-f", str(owners.importer)]
    assert main(args) == 2
    said = capsys.readouterr().err
    assert "is not a 'peer: true' mesh of your spec: it needs spec.meshes.eks with peer: true" in said
    assert said.count("Fix:") == 1 and "nothing was trusted" in said
