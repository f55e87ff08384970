"""Whether a running Envoy took every resource it was given: the readiness of a proxy of the local twin.

An Envoy answers its admin port and says ``LIVE`` whatever became of its configuration: a listener, cluster
or route configuration it rejected is simply absent (or the previous one keeps running), a cluster or
listener may still be warming, and an SDS secret that never came leaves the TLS context that needs it without
a certificate (503 at an egress, a reset handshake at an ingress), all without a word on ``/server_info``.
So a proxy is ready only when, besides being LIVE:

* no xDS subscription's last update was rejected: Envoy's counters ``listener_manager.lds.update_rejected``
  (listeners), ``cluster_manager.cds.update_rejected`` (clusters), ``http.<prefix>.rds.<name>.update_rejected``
  (a route configuration), ``sds.<name>.update_rejected`` (a secret), ``cluster.<name>.update_rejected`` (a
  cluster's endpoints). A counter only grows, so :class:`Tracker` remembers them between probes of one
  process: a rejection counts until a later update of the same subscription is accepted (``update_success``
  grows), as Envoy keeps the last good resource until then;
* no listener or cluster is warming (``listener_manager.total_listeners_warming``,
  ``cluster_manager.warming_clusters``);
* no SDS secret is still waited for (``/config_dump``'s ``dynamic_warming_secrets``: a secret whose update
  never arrived or was refused; its counter ``sds.<name>.update_success`` is 0).

Each :class:`Problem` names the resource and carries Envoy's own message, read from ``/config_dump``
(a listener's ``error_state``) or from the rejection lines of the Envoy's log since it started
(``Filesystem config update rejected: ...``). The log is read from an offset: the twin appends every run of a
component to the same file.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

Kind = Literal["listener", "cluster", "route", "secret", "endpoints"]
State = Literal["rejected", "warming", "missing"]

STATS_FILTER = r"(update_rejected|update_success|total_listeners_warming|warming_clusters|warming_state)$"
"""The ``/stats?filter=`` regex (RE2) that selects every counter and gauge readiness reads."""
MESSAGE_CHARS = 300
"""Envoy's message is cut to this length (a rejected resource's message may quote a whole proto)."""

_REJECTION = re.compile(
    r"\]\[(?:warning|error|critical)\]\[[\w-]+\] \[[^\]]*\] (?P<text>.*(?:config update rejected|config rejected"
    r"|rejected): .*)"
)
_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d ")


@dataclass(frozen=True)
class Problem:
    """One resource a running Envoy did not take.

    Attributes:
        kind: ``listener``, ``cluster``, ``route`` (a route configuration), ``secret`` or ``endpoints`` (a
            cluster's EDS resource).
        name: the resource's name (``0.0.0.0_8443``, ``http.8080``, ``kubernetes://mtls-credential``), or
            ``""`` when Envoy refused a whole LDS or CDS update without naming one.
        state: ``rejected`` (its last update was refused: the previous one, or nothing, runs), ``warming``
            (a listener or cluster waits for what it needs), ``missing`` (a secret that never came).
        envoy: Envoy's own message about it, ``""`` when Envoy gave none.
    """

    kind: Kind
    name: str
    state: State
    envoy: str = ""

    @property
    def subject(self) -> str:
        """``secret kubernetes://mtls-credential``; ``the listener update`` when Envoy named none."""
        return f"{self.kind} {self.name}" if self.name else f"the {self.kind} update"

    def __str__(self) -> str:
        what = {
            "rejected": "Envoy rejected its update (the previous one keeps running, or none)",
            "warming": "still warming (it waits for a secret, endpoints or a route it needs)",
            "missing": "never delivered: Envoy still waits for it",
        }[self.state]
        said = f' (Envoy: "{self.envoy}")' if self.envoy else ""
        return f"{self.subject}: {what}{said}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "state": self.state, "envoy": self.envoy}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Problem:
        kind = d.get("kind", "listener")
        state = d.get("state", "rejected")
        return cls(
            kind if kind in ("listener", "cluster", "route", "secret", "endpoints") else "listener",
            str(d.get("name", "")),
            state if state in ("rejected", "warming", "missing") else "rejected",
            str(d.get("envoy", "")),
        )


def parse_stats(text: str) -> dict[str, int]:
    """Envoy's ``/stats`` text (``name: value`` lines) → name → value; histograms are left out."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def subscription(prefix: str) -> tuple[Kind, str]:
    """The resource an xDS subscription's stat prefix is about: ``listener_manager.lds`` → every listener,
    ``http.outbound_0.0.0.0_8080.rds.http.8080`` → the route configuration ``http.8080``, ``sds.X`` → the
    secret (its stat name), ``cluster.X`` → the endpoints of cluster ``X``."""
    if prefix == "listener_manager.lds":
        return "listener", ""
    if prefix == "cluster_manager.cds":
        return "cluster", ""
    if prefix.startswith("http.") and ".rds." in prefix:
        return "route", prefix.partition(".rds.")[2]
    if prefix.startswith("sds."):
        return "secret", prefix[len("sds.") :]
    if prefix.startswith("cluster."):
        return "endpoints", prefix[len("cluster.") :]
    return "listener", prefix


def stat_name(resource: str) -> str:
    """How Envoy spells a resource name inside a stat name (``kubernetes://x`` → ``kubernetes_x``)."""
    return resource.replace("://", "_").replace(":", "_")


@dataclass
class Tracker:
    """The rejections of one Envoy process, remembered between probes (Envoy's counters only grow).

    ``seen``: per subscription stat prefix, the (rejected, accepted) counts of the last probe; ``rejected``:
    the prefixes whose last update was refused.
    """

    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)

    def update(self, stats: Mapping[str, int], failing: Callable[[str], bool] = lambda _: True) -> set[str]:
        """Take a probe's counters; return the prefixes whose last update was refused.

        ``failing(prefix)`` settles the one ambiguous case, both counters grown since the last probe (two
        updates, order unknown): it says whether the resource shows a failure now (a warming secret, a
        listener's error state).
        """
        for key, rejected in stats.items():
            if not key.endswith(".update_rejected"):
                continue
            prefix = key[: -len(".update_rejected")]
            accepted = stats.get(f"{prefix}.update_success", 0)
            before_rejected, before_accepted = self.seen.get(prefix, (0, 0))
            more_rejected, more_accepted = rejected > before_rejected, accepted > before_accepted
            if more_rejected and not more_accepted:
                self.rejected.add(prefix)
            elif more_accepted and not more_rejected:
                self.rejected.discard(prefix)
            elif more_rejected and more_accepted:
                if failing(prefix):
                    self.rejected.add(prefix)
                else:
                    self.rejected.discard(prefix)
            self.seen[prefix] = (rejected, accepted)
        return set(self.rejected)


def rejection_messages(log_text: str) -> list[str]:
    """Envoy's rejection messages in a log, oldest first: each ``... rejected: <message>`` line, with the
    lines that continue it (a quoted proto) joined, whitespace squeezed, cut to :data:`MESSAGE_CHARS`."""
    out: list[str] = []
    current: list[str] | None = None
    for line in log_text.splitlines():
        if _LOG_LINE.match(line):
            if current is not None:
                out.append(_squeeze(current))
                current = None
            m = _REJECTION.search(line)
            if m:
                current = [m.group("text")]
        elif current is not None:
            current.append(line)
    if current is not None:
        out.append(_squeeze(current))
    return out


def _squeeze(parts: list[str]) -> str:
    text = " ".join(" ".join(parts).split())
    for lead in ("Filesystem config update rejected: ", "config update rejected: "):
        if text.startswith(lead):
            text = text[len(lead) :]
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def judge(
    stats: Mapping[str, int],
    tracker: Tracker,
    read_dump: Callable[[str], list[dict[str, Any]]],
    messages: list[str],
) -> list[Problem]:
    """The problems of one probe: rejected subscriptions, warming listeners and clusters, secrets waited for.

    Args:
        stats: the Envoy's counters and gauges (:data:`STATS_FILTER`).
        tracker: this process's memory of rejections (updated).
        read_dump: ``/config_dump?resource=<field>`` → its entries; called only when a counter shows trouble.
        messages: Envoy's rejection messages since the process started (:func:`rejection_messages`).
    """
    dumps: dict[str, list[dict[str, Any]]] = {}

    def dump(resource: str) -> list[dict[str, Any]]:
        if resource not in dumps:
            dumps[resource] = read_dump(resource)
        return dumps[resource]

    def warming_secrets() -> dict[str, str]:
        """stat name → secret name of every secret Envoy still waits for."""
        return {stat_name(e.get("name", "")): str(e.get("name", "")) for e in dump("dynamic_warming_secrets")}

    def listener_errors() -> list[tuple[str, str]]:
        out = []
        for entry in dump("dynamic_listeners"):
            error = entry.get("error_state")
            if error:
                name = entry.get("name") or error.get("failed_configuration", {}).get("name", "")
                out.append((str(name), str(error.get("details", ""))))
        return list(dict.fromkeys(out))

    def failing(prefix: str) -> bool:
        kind, name = subscription(prefix)
        if kind == "secret":
            return name in warming_secrets()
        if kind == "listener":
            return bool(listener_errors())
        if kind == "route":
            return name not in {
                e.get("route_config", {}).get("name") for e in dump("dynamic_route_configs") if isinstance(e, dict)
            }
        return False

    rejected = tracker.update(stats, failing)
    never_delivered = any(k.startswith("sds.") and k.endswith(".update_success") and v == 0 for k, v in stats.items())
    problems: list[Problem] = []
    missing = warming_secrets() if never_delivered or any(p.startswith("sds.") for p in rejected) else {}
    problems += [Problem("secret", secret, "missing") for _, secret in sorted(missing.items())]
    for prefix in sorted(rejected):
        kind, name = subscription(prefix)
        if kind == "secret":
            if name in missing:
                continue
            name = next((s for s in _secret_names(dump) if stat_name(s) == name), name)
        if kind == "listener" and not name:
            named = listener_errors()
            if named:
                problems += [Problem("listener", n, "rejected", _cut(d)) for n, d in named]
                continue
        problems.append(Problem(kind, name, "rejected"))
    if stats.get("listener_manager.total_listeners_warming", 0) > 0:
        warm = [str(e.get("name", "")) for e in dump("dynamic_listeners") if "warming_state" in e]
        problems += [Problem("listener", n, "warming") for n in warm] or [Problem("listener", "", "warming")]
    if stats.get("cluster_manager.warming_clusters", 0) > 0:
        warm = [str(e.get("cluster", {}).get("name", "")) for e in dump("dynamic_warming_clusters")]
        problems += [Problem("cluster", n, "warming") for n in warm] or [Problem("cluster", "", "warming")]
    return attribute(problems, messages)


def _secret_names(dump: Callable[[str], list[dict[str, Any]]]) -> list[str]:
    groups = ("dynamic_active_secrets", "dynamic_warming_secrets")
    return [str(e.get("name", "")) for group in groups for e in dump(group)]


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def attribute(problems: Iterable[Problem], messages: list[str]) -> list[Problem]:
    """Give each problem Envoy's message about it: the latest message that names its resource; else, for the
    one problem left without a message, the latest message that names no problem's resource; else every such
    message (the latest three), since Envoy's file-based rejections do not always say which file."""
    found = list(problems)
    if not messages:
        return found
    names = [p.name for p in found if p.name]
    anonymous = [m for m in messages if not any(mentions(n, m) for n in names)]
    out: list[Problem] = []
    for p in found:
        if p.envoy:
            out.append(p)
            continue
        own = [m for m in messages if p.name and mentions(p.name, m)]
        out.append(replace(p, envoy=own[-1]) if own else p)
    unexplained = [i for i, p in enumerate(out) if not p.envoy and p.state != "warming"]
    if anonymous and unexplained:
        said = anonymous[-1] if len(unexplained) == 1 else "; ".join(anonymous[-3:])
        for i in unexplained:
            out[i] = replace(out[i], envoy=said)
    return out


def mentions(name: str, message: str) -> bool:
    """Whether ``message`` names the resource ``name`` itself, not one whose name only begins with it
    (``kubernetes://cred`` is not named by a message about ``kubernetes://cred-cacert``)."""
    return re.search(re.escape(name) + r"(?![\w.:/-])", message) is not None


class EnvoyProbe:
    """Reads one Envoy process's readiness through its admin interface and its log (:func:`judge`).

    Made when the process starts: it reads the log from its size then, and remembers the process's
    rejections between probes (:class:`Tracker`).
    """

    def __init__(self, admin: str, log: Path | None = None, timeout: float = 0.5) -> None:
        self.admin = admin
        self.log = log
        self.timeout = timeout
        self.tracker = Tracker()
        self.offset = _size(log)

    def problems(self) -> list[Problem]:
        """What this Envoy has not taken (empty: ready).

        Raises:
            OSError: the admin interface does not answer (``urllib.error.URLError`` is one).
            ValueError: it answered something that is not Envoy's admin JSON.
        """
        query = urllib.parse.urlencode({"filter": STATS_FILTER})
        stats = parse_stats(self._get(f"/stats?{query}"))
        return judge(stats, self.tracker, self._dump, rejection_messages(self._log_text()))

    def _get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=self.timeout) as r:
            return bytes(r.read()).decode(errors="replace")

    def _dump(self, resource: str) -> list[dict[str, Any]]:
        text = self._get(f"/config_dump?{urllib.parse.urlencode({'resource': resource})}")
        doc = json.loads(text) if text.strip() else {}
        return [c for c in doc.get("configs", []) if isinstance(c, dict)]

    def _log_text(self) -> str:
        if self.log is None:
            return ""
        try:
            with self.log.open("rb") as f:
                f.seek(self.offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0
