"""Render: spec + certificates → the Kubernetes/Istio documents of each mesh (pure), and their YAML."""

from meshbridge.render.bridge import render_bridge, render_secrets
from meshbridge.render.install import render_install
from meshbridge.render.manifests import ManifestSet, ownership_labels, to_yaml

__all__ = ["ManifestSet", "ownership_labels", "render_bridge", "render_install", "render_secrets", "to_yaml"]
