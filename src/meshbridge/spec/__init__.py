"""The Bridge spec: models (pure) and the YAML loader that reports errors by file, line and field."""

from meshbridge.spec.loader import DEFAULT_FILE, load_bridge, parse_bridge
from meshbridge.spec.models import Backend, Bridge, Export, Mesh

__all__ = ["DEFAULT_FILE", "Backend", "Bridge", "Export", "Mesh", "load_bridge", "parse_bridge"]
