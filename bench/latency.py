"""A TCP proxy on 127.0.0.1 that delays every byte by a fixed time each way: a laptop far from
its server, on loopback. With `one_way=0.025`, a round trip costs 50 ms more than without it, so
(time through the proxy - time without it) / 0.05 s counts the round trips a run waits for."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time

LOOPBACK = "127.0.0.1"


class LatencyProxy:
    def __init__(self, target_port: int, one_way: float) -> None:
        self.target_port, self.one_way = target_port, one_way
        self.listener = socket.socket()
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self.target_port))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                chunks: queue.SimpleQueue = queue.SimpleQueue()
                threading.Thread(target=self._read, args=(src, chunks), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, chunks), daemon=True).start()

    def _read(self, src: socket.socket, chunks: queue.SimpleQueue) -> None:
        try:
            while data := src.recv(65536):
                chunks.put((time.monotonic() + self.one_way, data))
        except OSError:
            pass
        chunks.put((time.monotonic() + self.one_way, b""))

    def _write(self, dst: socket.socket, chunks: queue.SimpleQueue) -> None:
        while True:
            due, data = chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.closed.set()
        for sock in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.close()
