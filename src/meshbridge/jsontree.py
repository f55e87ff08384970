"""Walking JSON-shaped documents (Envoy configuration as dicts and lists) (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def mappings(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in ``node``, at any depth, parents before their children (depth first).

    A caller may change a yielded dict before the walk goes on: its values are read after it was yielded.
    """
    if isinstance(node, dict):
        yield node
        for value in list(node.values()):
            yield from mappings(value)
    elif isinstance(node, list):
        for value in node:
            yield from mappings(value)
