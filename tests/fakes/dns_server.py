"""A tiny authoritative DNS server over UDP for tests, built on dnspython's message APIs: it
answers A, AAAA and TXT questions from a dict of records and NXDOMAIN for names it does not
hold. It runs in a thread, so it serves any event loop and blocking code alike.

    with FakeDNS({("example.org", "A"): ["127.0.0.1"],
                  ("example.org", "TXT"): ["flattr-verification=abc"]}) as server:
        ...  # resolver nameservers ["127.0.0.1"], port server.port
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 60


class FakeDNS:
    def __init__(self, records: Mapping[tuple[str, str], Iterable[str]] | None = None) -> None:
        self.records: dict[tuple[str, str], list[str]] = {
            (name.lower().rstrip("."), kind): list(values)
            for (name, kind), values in (records or {}).items()}
        self.questions: list[tuple[str, str]] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port: int = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)

    def __enter__(self) -> FakeDNS:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            self._socket.sendto(self.answer(query).to_wire(), peer)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text().lower().rstrip(".")
            kind = dns.rdatatype.to_text(question.rdtype)
            self.questions.append((name, kind))
            values = self.records.get((name, kind))
            if values:
                texts = [f'"{v}"' if kind == "TXT" else v for v in values]
                response.answer.append(dns.rrset.from_text_list(
                    question.name, TTL, dns.rdataclass.IN, question.rdtype, texts))
            elif not any(held == name for held, _ in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response
