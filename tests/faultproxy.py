"""A TCP proxy between the client and sshd that resets or stalls the connection after N bytes.

Bytes are counted in one direction: "down" (server to client: banners, heartbeats, the SFTP
transfer) or "up" (client to server: the script). After the count, `delay` seconds pass, then the
connection is reset (RST) or stalled (sockets held open, nothing forwarded).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

from sandbox import LOOPBACK


class FaultProxy:
    def __init__(
        self, target_port: int, after: int, mode: str = "reset", direction: str = "down", delay: float = 0.0
    ) -> None:
        assert mode in ("reset", "stall") and direction in ("up", "down")
        self.target_port = target_port
        self.after = after
        self.mode = mode
        self.direction = direction
        self.delay = delay
        self.listener = socket.socket()
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.triggered = threading.Event()
        self.closed = threading.Event()
        self.counted = 0
        self.connections = 0  # TCP connections accepted: one per SSH connection
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self.target_port))
            self.connections += 1
            self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while not self.closed.is_set():
                data = src.recv(4096)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if direction == self.direction and not self.triggered.is_set():
                    room = self.after - self.counted
                    if len(data) >= room:
                        dst.sendall(data[: max(room, 0)])
                        self.counted = self.after
                        self._trigger(src, dst)
                        return
                    self.counted += len(data)
                if self.triggered.is_set():
                    if self.mode == "stall":
                        self.closed.wait()
                    return
                dst.sendall(data)
        except OSError:
            return

    def _trigger(self, a: socket.socket, b: socket.socket) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.triggered.set()
        if self.mode == "reset":
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    # wakes the other pump's recv on it: until that returns, close() alone does
                    # not release the socket, and no reset is sent
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
        else:
            self.closed.wait()

    def close(self) -> None:
        self.closed.set()
        for s in [self.listener, *self._socks]:
            with contextlib.suppress(OSError):
                s.close()
