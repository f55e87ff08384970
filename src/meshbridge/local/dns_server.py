"""The clouds' DNS for the local twin: one authoritative server per mesh, on that mesh's own address.

``python -m meshbridge.local.dns_server CONFIG.json`` with ``{"<mesh>": {"address": ip, "port": p,
"records": {name: ip}}}``. Known names get an A record (TTL 5 s, so a restarted component's address is
picked up quickly); anything else is NXDOMAIN, as the private ALB's name is for the importer's side.
The server is dnslib's (UDP and TCP).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

TTL = 5


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    """Answers A queries from a fixed name → IP table; NXDOMAIN otherwise."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        ip = self.records.get(name)
        if ip is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=TTL, rdata=A(ip)))
        return reply


def serve(config: dict[str, Any]) -> list[DNSServer]:
    """Start a UDP and a TCP server per mesh zone; returns them (already serving in threads)."""
    servers = []
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    for zone in config.values():
        resolver = ZoneResolver(zone["records"])
        for tcp in (False, True):
            server = DNSServer(resolver, address=zone["address"], port=zone["port"], tcp=tcp, logger=quiet)
            server.start_thread()
            servers.append(server)
    return servers


def main(argv: list[str] | None = None) -> int:
    """Serve the zones of CONFIG.json until SIGTERM or SIGINT."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m meshbridge.local.dns_server CONFIG.json", file=sys.stderr)
        return 2
    servers = serve(json.loads(Path(args[0]).read_text()))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    for s in servers:
        s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
