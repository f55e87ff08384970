"""``meshbridge verify`` and ``meshbridge demo``: prove the path works and is secure, hop by hop."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from meshbridge.cli.common import (
    DEFAULT_BRIDGE,
    EXIT_CLUSTER_UNREAD,
    SEED_FILES,
    BridgeFile,
    Contexts,
    Kubeconfig,
    StateDir,
    err,
    out,
    parse_headers,
    read_bridge,
    seed_text,
    store_for,
    twin_for,
)
from meshbridge.envoy.proxyconfig import format_proxy_config
from meshbridge.errors import LocalError, PkiError
from meshbridge.local.curl import curl
from meshbridge.local.exportpath import DEFAULT_PATH
from meshbridge.pki import PkiStore
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.spec import Bridge
from meshbridge.verify import Condition, conditions_json, conditions_junit, conditions_summary, conditions_table
from meshbridge.verify.local import verify_local


def _report(
    conditions: list[Condition],
    as_json: bool,
    junit: Path | None,
    unread: str | None = None,
    wide: bool = False,
) -> None:
    if junit is not None:
        try:
            junit.write_text(conditions_junit(conditions))
        except OSError as e:
            raise LocalError(
                f"cannot write the JUnit report to {junit}: {e.strerror}. Fix: point --junit at a writable file"
            ) from e
    if as_json:
        sys.stdout.write(conditions_json(conditions) + "\n")
    else:
        sys.stdout.write(conditions_table(conditions, wide) + conditions_summary(conditions) + "\n")
    if unread:
        sys.stdout.flush()
        err.print(unread, markup=False, highlight=False)
        raise typer.Exit(EXIT_CLUSTER_UNREAD)
    if not all(c.passed for c in conditions):
        raise typer.Exit(1)


def verify(
    file: BridgeFile = DEFAULT_BRIDGE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the conditions as JSON.")] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="One check per line however wide (CHECK HOP STATUS REASON MESSAGE).")
    ] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write a JUnit XML report here.")] = None,
    path: Annotated[
        str | None,
        typer.Option(
            "--path",
            help="Request path used by the checks. Default: per export, a path its running routes serve on every "
            "hop (/hello-world when they route every path); on clusters /hello-world.",
            show_default=False,
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "-H",
            "--header",
            metavar="'NAME: VALUE'",
            help="'Name: value' sent with every request of the checks (a header an AuthorizationPolicy's when or a "
            "route's match wants); repeatable. Not Host or User-Agent, which the checks set.",
        ),
    ] = None,
    contexts: Contexts = None,
    clusters: Annotated[
        bool, typer.Option("--clusters", help="Verify the real clusters of spec.meshes.<mesh>.context.")
    ] = False,
    kubeconfig: Kubeconfig = None,
    workload: Annotated[
        str | None,
        typer.Option("--workload", help="NAMESPACE/DEPLOYMENT to curl from on clusters (default: the spec's app)."),
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Check the bridge hop by hop, like Kubernetes conditions; exit 1 unless every check passed.

    Locally (the default): the exporter gateway accepts the importer's certificate and serves the Lambda's
    page (the article's step 4 curl); refuses no certificate, a foreign CA, an expired certificate and the
    wrong SNI; the app reaches the export in plain HTTP (step 6); the private ALB is unreachable from the
    importer's side; every certificate is far from expiry, in the store and as each gateway serves it
    (ServedCertificateExpiry); every component is ready, each proxy having taken every listener, cluster,
    route configuration and secret it was given (ComponentsReady). What runs decides what is checked: each
    export is asked on a path its running routes serve (unless --path), and each gateway is judged on the
    Secret it really reads (your manifests' credentialName, when it differs from the spec's).

    On real clusters (--context MESH=CONTEXT, or --clusters): both gateways have their routes and serve the
    PKI store's current certificates, trust bundles and CRLs (both read from their /config_dump through the API
    server; GatewaysServeCurrentCerts), and the importer's app reaches the export (kubectl exec curl).
    A failed check names the hop, the response flag or TLS alert, and what to fix. A check that needs one
    that did not pass is still listed: Unknown, reason NotRunWithout<Check> (e.g. NotRunWithoutBackendAnswers).
    A summary line follows the table ('12 passed, 1 failed, 2 not run'); --json has it as "summary", and
    --junit reports each check once per export and importing mesh (ExporterAcceptsImporterCert[lambda → gke]),
    the ones not run as skipped. An Unknown check (undecided, or not run) exits 1 too: a gate passes on proof
    only. On clusters, exits 2 (not 1) when a cluster cannot be reached or read, as every cluster command does.
    """
    from meshbridge.kube import parse_context_overrides
    from meshbridge.kube.verify import CLUSTER_FAILURES, unread_error, verify_clusters

    bridge = read_bridge(file)
    headers = tuple(parse_headers(header or [], reserved=("host", "user-agent")))
    if path is not None and not path.startswith("/"):
        raise LocalError(f"--path {path!r}: a request path starts with '/'. Fix: --path /{path.lstrip('/')}")
    if contexts or clusters:
        found = verify_clusters(
            bridge,
            parse_context_overrides(contexts or []),
            kubeconfig=kubeconfig,
            workload=workload,
            path=path or DEFAULT_PATH,
            headers=headers,
            progress=lambda line: err.print(line, markup=False, highlight=False),
            credentials=_store_credentials(bridge, store_for(file, state_dir)),
        )
        unread = [c for c in found if c.status == "Unknown" and c.reason in CLUSTER_FAILURES]
        _report(found, as_json, junit, unread_error(bridge, unread) if unread else None, wide)
    else:
        _report(verify_local(twin_for(file, state_dir), path, headers), as_json, junit, wide=wide)


def _store_credentials(bridge: Bridge, store: PkiStore) -> dict[str, MeshCredentials] | None:
    """What the gateways must serve, from the PKI store, for ``GatewaysServeCurrentCerts`` on clusters; ``None``
    (with a note on stderr saying why the check is left out) in cert-manager mode or without a readable store."""
    if bridge.issued_by_cert_manager:
        why = "cert-manager issues the gateway certificates in the clusters ('meshbridge certs check --context' "
        why += "reads them)"
    else:
        try:
            return store.credentials(bridge)
        except PkiError as e:
            why = f"the PKI store cannot say what they must serve: {e}"
    err.print(f"note: GatewaysServeCurrentCerts is not checked: {why}", markup=False, highlight=False)
    return None


def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the topology running (stop it with 'local down').")
    ] = False,
) -> None:
    """The article end to end on this machine: up, route tables, verify, the step 6 request, down.

    Uses the shipped seed scenario (examples/seed) in a temporary folder; exits 0 only if every check passed.
    """
    work = Path(tempfile.mkdtemp(prefix="meshbridge-demo-"))
    for name in SEED_FILES:
        (work / name).write_text(seed_text(name))
    file = work / "bridge.yaml"
    twin = twin_for(file, None)
    passed = False
    try:
        out.print("== meshbridge demo: the article's scenario, locally ==")
        out.print("EKS exports lambda.external (an AWS Lambda behind a private ALB) through its ingress gateway with")
        out.print("mutual TLS; GKE apps call plain http://lambda.external through their egress gateway.\n")
        report = twin.up(progress=lambda line: err.print(line, markup=False, highlight=False))
        out.print(f"local topology up in {report.seconds:.2f} s\n")
        for proxy, article in (
            ("eks/istio-ingressgateway", "deploy/istio-ingressgateway -n istio-ingress"),
            ("gke/istio-egressgateway", "deploy/istio-egressgateway -n istio-egress"),
        ):
            out.print(f"$ meshbridge local proxy-config routes {proxy}   # istioctl proxy-config routes {article}")
            sys.stdout.write(format_proxy_config("routes", twin.config_dump(proxy)) + "\n")
            sys.stdout.flush()
        conditions = verify_local(twin)
        out.print("$ meshbridge verify")
        sys.stdout.write(conditions_table(conditions) + conditions_summary(conditions) + "\n\n")
        out.print(
            "$ meshbridge local curl -i http://lambda.external/hello-world   "
            "# kubectl exec -n sleep deploy/sleep -- curl lambda.external/hello-world -is"
        )
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        sys.stdout.write(
            f"{r.http_version} {r.status} {r.reason}\n" + "".join(f"{k}: {v}\n" for k, v in r.headers) + "\n"
        )
        sys.stdout.write(r.body.decode(errors="replace") + "\n\n")
        passed = all(c.passed for c in conditions)
        out.print("every check passed" if passed else "some checks FAILED (see the table above)")
    finally:
        sys.stdout.flush()
        if keep:
            out.print(f"left running; stop it with: meshbridge local down -f {file}")
        else:
            twin.down()
            shutil.rmtree(work, ignore_errors=True)
    if not passed:
        raise typer.Exit(1)
