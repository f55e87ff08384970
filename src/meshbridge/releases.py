"""The Istio release meshbridge defaults to (pure).

``CURRENT_ISTIO`` is a release of Istio 1.31, supported in December 2026 (each minor is supported until six weeks
after the release two minors later), and the line of the istiod oracle pinned in ``tools/istio-oracle/go.mod``:
the translation of this line is the one checked against istiod's own code. Other versions are modelled by
the version-dependent rules in :class:`meshbridge.istio.config.MeshSettings`, not checked against istiod.
"""

from __future__ import annotations

CURRENT_ISTIO = "1.31.4"
