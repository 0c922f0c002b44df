"""Fault injection against real processes: a TCP proxy that can cut a service off, and a database cut.

`TcpProxy` sits between meter and a TCP service (PostgreSQL, Redis); `stop()` closes the listening
socket and every open connection, as if the network or the server went away; `start()` brings it back
on the same port; `drop_replies` lets requests through and loses the answers (a reply lost after the
service acted). `DatabaseCut` uses it for PostgreSQL, and for SQLite moves the file away (with a
directory in its place, so SQLite cannot even create a new one) after dropping pooled connections.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

from meter.dev.redis_server import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.drop_replies = False  # True: requests still reach the service, its replies never come back
        self.cut_after_request = False  # True: the next request reaches the service, then its connection breaks
        self._answered = threading.Event()  # the service's reply to the cut request arrived (and was dropped)

    def start(self) -> TcpProxy:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b, replies in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pipe, args=(a, b, replies), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                if replies and self.drop_replies:
                    self._answered.set()
                    continue  # the service did the work; its answer is lost on the way back
                if not replies and self.cut_after_request:
                    self.cut_after_request, self.drop_replies = False, True  # once: the next connection works
                    self._answered.clear()
                    dst.sendall(data)
                    self._answered.wait(5)  # the service acts on the request and answers into the void ...
                    src.shutdown(socket.SHUT_RDWR)  # ... and the client's connection breaks
                    self.drop_replies = False
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):  # shutdown wakes the thread blocked in accept() (Linux)
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class DatabaseCut:
    """`url` to give the app; `cut()` makes the database unreachable, `restore()` brings it back."""

    def __init__(self, database_url: str) -> None:
        self.original = database_url
        self.proxy: TcpProxy | None = None
        if database_url.startswith("sqlite:///"):
            self.path = database_url.removeprefix("sqlite:///")
            self.url = database_url
        else:
            parts = urlsplit(database_url)
            self.proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
            netloc = parts.netloc.rsplit("@", 1)
            host = f"127.0.0.1:{self.proxy.port}"
            self.url = urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    def cut(self, engine) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        else:
            engine.dispose()  # pooled connections would keep the old file open
            os.rename(self.path, self.path + ".aside")
            os.mkdir(self.path)

    def restore(self) -> None:
        if self.proxy is not None:
            self.proxy.start()
        else:
            os.rmdir(self.path)
            os.rename(self.path + ".aside", self.path)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
