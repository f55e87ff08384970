"""``ManifestSet``: the Kubernetes/Istio documents of one mesh, in apply order, with YAML output."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshbridge.fsutil import Pruned, prune_written, write_atomic

Document = dict[str, Any]

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "meshbridge"
BRIDGE_LABEL = "meshbridge.io/bridge"
EXPORT_LABEL = "meshbridge.io/export"

# Apply order: what others reference comes first (namespaces, then the Secrets gateways read, cert-manager's
# Issuers and the Certificates it turns into Secrets, then the registry entries routes point at, then the
# AuthorizationPolicy, in place before the listeners it guards open, then the listeners and routes themselves,
# then the EnvoyFilters that patch those listeners).
APPLY_ORDER = (
    "Namespace",
    "Secret",
    "Bundle",
    "ConfigMap",
    "Issuer",
    "Certificate",
    "Service",
    "IstioOperator",
    "ServiceEntry",
    "DestinationRule",
    "BackendTLSPolicy",
    "AuthorizationPolicy",
    "Gateway",
    "VirtualService",
    "HTTPRoute",
    "EnvoyFilter",
)


# Kinds only istioctl reads (``istioctl install -f``): no cluster has their CRD since Istio 1.24 removed the
# in-cluster operator, so ``kubectl apply -k`` would fail on them; the kustomization leaves them out.
ISTIOCTL_ONLY = frozenset({"IstioOperator"})


def apply_rank(doc: Document) -> int:
    """Position of ``doc``'s kind in :data:`APPLY_ORDER` (unknown kinds last)."""
    kind = doc.get("kind", "")
    return APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)


def ownership_labels(bridge: str) -> dict[str, str]:
    """The labels that mark an object as meshbridge's, for bridge ``bridge`` (prune and delete select on them)."""
    return {MANAGED_BY: MANAGER, BRIDGE_LABEL: bridge}


def secret(name: str, namespace: str, data: dict[str, bytes], labels: dict[str, str] | None = None) -> Document:
    """An ``Opaque`` Secret holding ``data`` (base64-encoded), with ``labels`` when given."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, **({"labels": dict(labels)} if labels else {})},
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode("ascii") for k, v in data.items()},
    }


def to_yaml(documents: list[Document]) -> str:
    """Multi-document YAML (``---`` separated) that ``kubectl apply -f -`` accepts; keys in document order.

    Values shared between documents (the same cipher list in several Gateway servers) are written out in
    full each time, never as ``&id001`` anchors and ``*id001`` aliases, which kubectl resolves but many
    GitOps and templating tools do not.
    """
    return yaml.dump_all(
        documents, Dumper=NoAliasDumper, sort_keys=False, default_flow_style=False, explicit_start=True, width=1000
    )


class NoAliasDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """The safe dumper (libyaml's when present) without anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@dataclass(frozen=True)
class ManifestSet:
    """The documents of one mesh, sorted in apply order (stable within a kind)."""

    mesh: str
    documents: tuple[Document, ...]

    @classmethod
    def of(cls, mesh: str, documents: list[Document]) -> ManifestSet:
        """Sort ``documents`` into apply order."""
        return cls(mesh, tuple(sorted(documents, key=apply_rank)))

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)

    def find(self, kind: str, name: str, namespace: str | None = None) -> Document:
        """The document of ``kind``/``name`` (and ``namespace``); ``KeyError`` if absent."""
        for d in self.documents:
            md = d.get("metadata", {})
            if (
                d.get("kind") == kind
                and md.get("name") == name
                and (namespace is None or md.get("namespace") == namespace)
            ):
                return d
        raise KeyError(f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}")

    def to_yaml(self) -> str:
        """All documents as one multi-document YAML text."""
        return to_yaml(list(self.documents))

    def write_dir(self, directory: Path) -> tuple[list[Path], Pruned]:
        """Write one file per document into ``directory/<mesh>/`` plus a ``kustomization.yaml`` listing those
        ``kubectl apply -k`` can apply (not the :data:`ISTIOCTL_ONLY` kinds, for ``istioctl install -f``).

        Files are numbered in apply order (``00-namespace-istio-ingress.yaml`` …). Secrets are written 0600.
        Numbered files an earlier render wrote that this one does not are removed, so that ``kubectl apply -f
        DIR`` never applies a stale object (or an old Secret's key); numbered files meshbridge did not write
        (see :func:`~meshbridge.fsutil.prune_written`) are left alone.

        Returns:
            The paths written (kustomization last), and what was removed and left alone.
        """
        folder = directory / self.mesh
        written: list[Path] = []
        for i, doc in enumerate(self.documents):
            md = doc["metadata"]
            stem = "-".join(p for p in (doc["kind"].lower(), md.get("namespace"), md["name"]) if p)
            path = folder / f"{i:02d}-{stem}.yaml"
            write_atomic(path, to_yaml([doc]), mode=0o600 if doc["kind"] == "Secret" else 0o644)
            written.append(path)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [
                p.name for p, d in zip(written, self.documents, strict=True) if d["kind"] not in ISTIOCTL_ONLY
            ],
        }
        kpath = folder / "kustomization.yaml"
        write_atomic(kpath, yaml.safe_dump(kustomization, sort_keys=False))
        written.append(kpath)
        return written, prune_written(folder, "[0-9][0-9]*-*.yaml", written, labelled_ours)


def labelled_ours(path: Path) -> bool:
    """Whether every document of ``path`` carries meshbridge's ``managed-by`` label (a file it rendered)."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return bool(docs) and all(
        isinstance(d, dict) and ((d.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) == MANAGER for d in docs
    )
