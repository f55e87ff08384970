"""``meshbridge lint``: both meshes' configuration and certificates checked as one graph (pure).

``istioctl analyze`` looks at one cluster at a time; most failures of a cross-mesh link sit between the
two meshes. Lint reads every mesh with the same model and visibility logic as the local twin
(:mod:`meshbridge.istio`, :func:`meshbridge.envoy.translate.translate`), follows each importer → exporter
link through both translations, and reports findings with stable codes (``docs/lint.md``).

::

    inp = from_bridge(bridge, credentials)            # or from_manifests({"eks": docs, "gke": docs}, bridge=...)
    report = lint(inp)
    print(report.table()); sys.exit(report.exit_code)
"""

from meshbridge.lint.codes import CODES, CodeInfo
from meshbridge.lint.engine import CHECKS, LintReport, lint
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.lint.inputs import Link, LintInput, MeshInput, SecretFile, from_bridge, from_manifests
from meshbridge.severity import Severity

__all__ = [
    "CHECKS",
    "CODES",
    "CodeInfo",
    "Finding",
    "Link",
    "LintInput",
    "LintReport",
    "MeshInput",
    "ObjectRef",
    "SecretFile",
    "Severity",
    "from_bridge",
    "from_manifests",
    "lint",
]
