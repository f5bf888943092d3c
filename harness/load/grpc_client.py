"""gRPC calls on one HTTP/2 connection of the caller's own, on the h2 protocol library.

A gRPC channel hides its connections (it may open several, and reconnects on its own); the
checks on HTTP/2 balancing need the opposite: one connection, opened from the user's own
source address, that every call of a turn goes over, so "the calls of one connection" is a
fact of the run rather than of a channel's policy. h2 speaks the protocol over a socket the
caller opens (any socket, gevent's too); this module adds gRPC's framing: a 5-byte prefix
per message, ``grpc-status`` and the instance in the trailers.
"""

from __future__ import annotations

import socket
import ssl
import struct
import urllib.parse
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

from harness.backends import GRPC_INSTANCE_METADATA, GRPC_STREAM, GRPC_UNARY, INSTANCE_HEADER
from harness.load.route import FixedRoute

UNARY, STREAM = GRPC_UNARY, GRPC_STREAM
READ_SIZE = 65536


class GrpcCallError(Exception):
    """A call that ended without an answer: the connection closed or the stream was reset."""


@dataclass
class GrpcAnswer:
    """What a call got: the HTTP status, ``grpc-status`` (0 is OK), the instance, the messages."""

    http_status: int = 0
    grpc_status: int | None = None
    grpc_message: str = ""
    instance: str = ""
    messages: list[bytes] = field(default_factory=list)
    plain: bool = False  # a plain HTTP request's answer (``get``), not a gRPC call's: no grpc-status

    @property
    def ok(self) -> bool:
        return self.http_status == 200 and (self.plain or self.grpc_status == 0)

    @property
    def status(self) -> int:
        """As the records keep it: 200 for a call that succeeded, the HTTP status or 500 otherwise."""
        if self.ok:
            return 200
        return self.http_status if self.http_status not in (0, 200) else 500

    @property
    def headers(self) -> dict[str, str]:
        return {INSTANCE_HEADER: self.instance}

    def header(self, name: str) -> str:
        return self.instance if name.lower() == INSTANCE_HEADER.lower() else ""

    def describe(self) -> str:
        if self.http_status != 200 or self.plain:
            return f"HTTP {self.http_status}"
        return f"grpc-status {self.grpc_status}: {self.grpc_message}".rstrip(": ")


def frame(message: bytes) -> bytes:
    """One gRPC message on the wire: uncompressed flag, big-endian length, the bytes."""
    return struct.pack(">BI", 0, len(message)) + message


def unframe(buffer: bytearray) -> list[bytes]:
    """The whole messages at the start of ``buffer``, removed from it."""
    messages = []
    while len(buffer) >= 5:
        _, length = struct.unpack(">BI", bytes(buffer[:5]))
        if len(buffer) < 5 + length:
            break
        messages.append(bytes(buffer[5 : 5 + length]))
        del buffer[: 5 + length]
    return messages


class GrpcConnection:
    """One HTTP/2 connection to ``url`` (``http://`` for h2c, ``https://`` for TLS with ALPN h2):
    gRPC calls, and plain GETs (``get``) for HTTP/2 without gRPC."""

    def __init__(
        self, url: str, source: str = "", timeout: float = 10.0, ca_file: str | None = None, authority: str = ""
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self.tls = parts.scheme == "https"
        host, port = parts.hostname or "", parts.port or (443 if self.tls else 80)
        self.authority = authority or parts.netloc
        sock = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0) if source else None)
        if self.tls:
            context = ssl.create_default_context(cafile=ca_file)
            context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(sock, server_hostname=authority.split(":")[0] or host)
        self.sock = sock
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self._flush()
        self._answers: dict[int, GrpcAnswer] = {}
        self._buffers: dict[int, bytearray] = {}
        self._ended: set[int] = set()

    def call(self, method: str, message: bytes = b"") -> GrpcAnswer:
        """One call, its request sent whole; returns once its trailers (or an error status) came."""
        stream = self.h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"), (":scheme", self._scheme), (":path", method), (":authority", self.authority),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ]  # fmt: skip
        self._answers[stream], self._buffers[stream] = GrpcAnswer(), bytearray()
        self.h2.send_headers(stream, headers)
        self.h2.send_data(stream, frame(message), end_stream=True)
        return self._wait(stream)

    def get(self, path: str) -> GrpcAnswer:
        """A plain GET on the connection (HTTP over HTTP/2, no gRPC); the instance from ``X-Instance``."""
        stream = self.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":scheme", self._scheme), (":path", path), (":authority", self.authority)]
        self._answers[stream], self._buffers[stream] = GrpcAnswer(plain=True), bytearray()
        self.h2.send_headers(stream, headers, end_stream=True)
        return self._wait(stream)

    @property
    def _scheme(self) -> str:
        return "https" if self.tls else "http"

    def _wait(self, stream: int) -> GrpcAnswer:
        """Sends what is queued and reads until ``stream`` has ended; its answer."""
        self._flush()
        while stream not in self._ended:
            data = self.sock.recv(READ_SIZE)
            if not data:
                raise GrpcCallError("the connection closed before the call's trailers")
            for event in self.h2.receive_data(data):
                self._on(event)
            self._flush()
        self._ended.discard(stream)
        body = self._buffers.pop(stream)
        answer = self._answers.pop(stream)
        if answer.plain:
            answer.messages = [bytes(body)]
        return answer

    def _on(self, event: h2.events.Event) -> None:
        stream = getattr(event, "stream_id", 0)
        answer = self._answers.get(stream)
        if isinstance(event, h2.events.ConnectionTerminated):
            raise GrpcCallError(f"the balancer ended the connection (GOAWAY, error {event.error_code})")
        if answer is None:
            return
        if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            self._headers(answer, {str(k): str(v) for k, v in event.headers or ()})
        elif isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, stream)
            buffer = self._buffers[stream]
            buffer += event.data
            if not answer.plain:
                answer.messages += unframe(buffer)
        elif isinstance(event, h2.events.StreamReset):
            raise GrpcCallError(f"the stream was reset (error {event.error_code})")
        if getattr(event, "stream_ended", None) is not None or isinstance(event, h2.events.StreamEnded):
            self._ended.add(stream)

    @staticmethod
    def _headers(answer: GrpcAnswer, headers: dict[str, str]) -> None:
        if ":status" in headers:
            answer.http_status = int(headers[":status"])
        if "grpc-status" in headers:
            answer.grpc_status = int(headers["grpc-status"])
            answer.grpc_message = urllib.parse.unquote(headers.get("grpc-message", ""))
        answer.instance = headers.get(GRPC_INSTANCE_METADATA, answer.instance)  # the same name as X-Instance

    def _flush(self) -> None:
        outgoing = self.h2.data_to_send()
        if outgoing:
            self.sock.sendall(outgoing)

    def close(self) -> None:
        try:
            self.h2.close_connection()
            self._flush()
        except OSError:
            pass
        finally:
            self.sock.close()

    def __enter__(self) -> GrpcConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def connect(route: FixedRoute, source: str = "", timeout: float = 10.0) -> GrpcConnection:
    """A new connection to a gRPC route, from ``source``, verifying its certificate when it is https."""
    ca_file = str(route.ca_file) if route.ca_file else None
    return GrpcConnection(route.url, source, timeout, ca_file, route.host or "")
