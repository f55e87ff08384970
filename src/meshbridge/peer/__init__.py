"""Two owners who never share keys (pure): the signed peering offer and reply (:mod:`.documents`).

The exporter's owner runs ``meshbridge peer offer``, the importer's ``peer accept OFFER`` (which writes the
reply), the exporter's ``peer admit REPLY``. Each keeps a spec of their own side (the other owner's mesh
marked ``peer: true``) and a state folder with their own keys only; the documents carry CA certificates,
never keys. The CLI (``meshbridge.cli.peer_cmd``) reads and writes the files and the store.
"""

from meshbridge.peer.documents import (
    Offer,
    OfferedExport,
    Peer,
    Reply,
    make_offer,
    make_reply,
    offer_problems,
    read_offer,
    read_reply,
    reply_problems,
    to_text,
)

__all__ = [
    "Offer",
    "OfferedExport",
    "Peer",
    "Reply",
    "make_offer",
    "make_reply",
    "offer_problems",
    "read_offer",
    "read_reply",
    "reply_problems",
    "to_text",
]
