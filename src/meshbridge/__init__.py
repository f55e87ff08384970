"""meshbridge: share a service across two independent Istio meshes over gateway-to-gateway mutual TLS.

The pipeline runs one way (see DESIGN in the README): ``spec`` → ``pki`` → ``render`` → ``istio`` model →
``envoy`` translation / ``lint``; the I/O layers ``local``, ``kube`` and ``aws`` act on the results; ``cli``
is a thin shell over all of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meshbridge")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
