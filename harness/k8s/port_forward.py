"""A loopback listener that carries each connection to a pod's port, like ``kubectl port-forward``.

Clients (Locust, the harness's probes, the control calls) connect to ``127.0.0.1:PORT``;
each accepted connection opens its own stream to the pod through ``connect`` and bytes
are copied both ways until either side closes. The listener is on loopback only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from harness.net import LOOPBACK

Connect = Callable[[], socket.socket]
_CHUNK = 65536


class LocalForward:
    def __init__(self, connect: Connect, description: str) -> None:
        self.connect = connect
        self.description = description
        self._listener = socket.create_server((LOOPBACK, 0), backlog=511)
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"forward {description}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                if self._closed:
                    return
                # Out of file descriptors or an aborted connection: the listener goes on.
                time.sleep(0.05)
                continue
            threading.Thread(target=self._carry, args=(client,), daemon=True).start()

    def _carry(self, client: socket.socket) -> None:
        try:
            remote = self.connect()
        except Exception:
            client.close()  # the client sees its connection closed, as with a pod that is gone
            return
        with self._lock:
            if self._closed:
                client.close()
                remote.close()
                return
            self._open.update((client, remote))
        back = threading.Thread(target=_copy, args=(remote, client), daemon=True)
        back.start()
        _copy(client, remote)
        back.join()
        with self._lock:
            self._open.difference_update((client, remote))
        client.close()
        remote.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            streams, self._open = list(self._open), set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() on Linux
        self._listener.close()
        for stream in streams:
            with contextlib.suppress(OSError):
                stream.shutdown(socket.SHUT_RDWR)


def _copy(source: socket.socket, target: socket.socket) -> None:
    """Copies until ``source`` ends, then ends the write side of ``target``."""
    try:
        while data := source.recv(_CHUNK):
            target.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
