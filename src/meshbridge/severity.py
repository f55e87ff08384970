"""How bad a finding is: one word for every checker of meshbridge (pure).

Lint's findings (:mod:`meshbridge.lint.findings`), the certificate rules (:mod:`meshbridge.pki.checks`), the
clusters' preflight (:mod:`meshbridge.kube.preflight`) and the consistency of a translation
(:mod:`meshbridge.envoy.consistency`) all say it the same way:

* ``error``: it breaks traffic or security; the command fails (exit 1), plan and apply stop;
* ``warning``: it works, but is weak or fragile; shown, never blocking;
* ``info``: what a checker assumed or could not check (lint only).
"""

from __future__ import annotations

from typing import Literal

Severity = Literal["error", "warning", "info"]

SEVERITY_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
"""Sort order: errors first."""
