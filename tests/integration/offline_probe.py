"""Run as a script by test_offline.py: blocks every non-loopback connection, then imports,
ingests, searches and asks, and prints what (if anything) tried to reach the network."""

import json
import socket
import sys

attempts: list[str] = []
LOCAL = ("127.", "::1", "localhost", "0.0.0.0")
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _is_local(address) -> bool:  # type: ignore[no-untyped-def]
    if not isinstance(address, tuple):
        return True  # unix sockets
    return str(address[0]).startswith(LOCAL)


def guarded_connect(self, address):  # type: ignore[no-untyped-def]
    if not _is_local(address):
        attempts.append(f"connect {address}")
        raise OSError(f"network blocked by test: {address}")
    return _connect(self, address)


def guarded_connect_ex(self, address):  # type: ignore[no-untyped-def]
    if not _is_local(address):
        attempts.append(f"connect_ex {address}")
        return 111
    return _connect_ex(self, address)


def guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if host is not None and not str(host).startswith(LOCAL):
        attempts.append(f"resolve {host}")
        raise socket.gaierror(f"name resolution blocked by test: {host}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = guarded_getaddrinfo

from rag.cards import all_cards, load_corpus  # noqa: E402
from rag.components import build_components  # noqa: E402
from rag.settings import Settings  # noqa: E402

settings = Settings(data_dir=sys.argv[1])
components = build_components(settings)
report = components.indexer.sync(all_cards(load_corpus(settings.corpus_dir)))
hits = components.retriever.search("What is dropout?", 3)
answer = components.answerer.ask("How does dropout work at inference time?")
print(json.dumps({
    "attempts": attempts,
    "added": report.added,
    "top": hits[0].card.id,
    "refused": answer.refused,
    "citations": [c.card_id for c in answer.citations],
    "answer": answer.answer,
}))
