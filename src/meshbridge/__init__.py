"""meshbridge: share a service across two independent Istio meshes over gateway-to-gateway mutual TLS.

The pipeline runs one way (see DESIGN in the README): ``spec`` → ``pki`` → ``render`` → ``istio`` model →
``envoy`` translation / ``lint``; the I/O layers ``local``, ``kube`` and ``aws`` act on the results; ``cli``
is a thin shell over all of them.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``meshbridge.__version__``, read from the installed package's metadata when first asked for (not at
    import: the CLI starts by importing this package, and must be quick to answer Ctrl-C)."""
    if name != "__version__":
        raise AttributeError(f"module 'meshbridge' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meshbridge")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+unknown"
