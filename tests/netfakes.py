"""A loopback HTTP server that answers as slowly as a broken proxy or server can: one byte every
``interval`` seconds, for as long as the client stays (a per-read time-out never fires).

``url`` is its base URL; ``hits`` counts the requests it received. Used as a context manager.
"""

from __future__ import annotations

import socket
import socketserver
import threading

ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
          + b'{"choices": [{"message": {"content": "' + b"P" * 100000)


class DripServer:
    def __init__(self, interval: float = 0.5, port: int = 0):
        self.interval = interval
        self.hits = 0
        self.stopped = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                outer.hits += 1
                self.request.settimeout(1)
                try:
                    self.request.recv(65536)  # the request (its first packet is enough)
                except OSError:
                    return
                for i in range(len(ANSWER)):
                    if outer.stopped.wait(outer.interval):
                        return
                    try:
                        self.request.sendall(ANSWER[i:i + 1])
                    except OSError:
                        return  # the client gave up: what a deadline does

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DripServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
