"""Write the ALB's DNS name into the bridge file as the export's ``backend.host``, keeping its comments.

The file is edited with ruamel.yaml's round-trip mode, which keeps comments, key order, quoting and flow
styles; the new text is validated as a bridge before it replaces the file (atomically).
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from meshbridge.errors import AwsError, SpecError
from meshbridge.fsutil import write_atomic
from meshbridge.spec.loader import parse_bridge


def write_backend_host(bridge_file: Path, export: str, host: str) -> bool:
    """Set ``spec.exports[name=export].backend.host`` to ``host`` in ``bridge_file``.

    Args:
        bridge_file: the bridge file to edit in place.
        export: the export's ``name``.
        host: the new host, e.g. the ALB's DNS name (lowercased: DNS is case-insensitive and the spec
            wants lowercase hosts).

    Returns:
        True when the file changed, False when it already had that host.

    Raises:
        AwsError: the file cannot be read, parsed or written, has no such export, or would no longer be
            a valid bridge with the new host (the file is then left untouched).
    """
    host = host.lower().rstrip(".")
    try:
        text = bridge_file.read_text(encoding="utf-8")
    except OSError as e:
        raise AwsError(f"cannot read {bridge_file} to write the backend host: {e.strerror}") from e
    yaml = _yaml(text)
    try:
        doc: Any = yaml.load(text)
    except YAMLError as e:
        raise AwsError(f"{bridge_file}: not valid YAML, backend host not written: {e}") from e
    exports = (doc.get("spec") or {}).get("exports") if isinstance(doc, dict) else None
    entry = next((ex for ex in exports or [] if isinstance(ex, dict) and ex.get("name") == export), None)
    if entry is None or not isinstance(entry.get("backend"), dict):
        raise AwsError(f"{bridge_file}: no export {export!r} with a backend; backend host not written")
    if entry["backend"].get("host") == host:
        return False
    entry["backend"]["host"] = host
    buf = io.StringIO()
    yaml.dump(doc, buf)
    new_text = buf.getvalue()
    try:
        parse_bridge(new_text, source=str(bridge_file))
    except SpecError as e:
        raise AwsError(
            f"{bridge_file} would not be a valid bridge with backend host {host!r}; not written:\n{e}"
        ) from e
    try:
        write_atomic(bridge_file, new_text, mode=bridge_file.stat().st_mode & 0o777)
    except OSError as e:
        raise AwsError(f"cannot write {bridge_file}: {e.strerror}") from e
    return True


def _yaml(text: str) -> YAML:
    """A round-trip YAML that re-emits with the file's own indentation."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    mapping, sequence, offset = _indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _indentation(text: str) -> tuple[int, int, int]:
    """Guess (mapping indent, sequence indent, dash offset) from the first block sequence of the file."""
    lines = text.splitlines()
    mapping = 2
    for prev, line in itertools.pairwise(lines):
        stripped = line.lstrip(" ")
        pstripped = prev.lstrip(" ")
        if stripped.startswith("- ") and pstripped.rstrip().endswith(":") and not pstripped.startswith("#"):
            parent = len(prev) - len(pstripped)
            dash = len(line) - len(stripped) - parent
            return mapping, dash + 2, dash
    return mapping, 2, 0
