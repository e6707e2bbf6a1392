"""Receivers on 127.0.0.1 for what a worker sends out (a webhook POST, an email over SMTP) that
record everything and answer nothing until `release()`: while one holds a request, the worker
that sent it is known to be mid-send, and a test can kill it exactly there."""

from __future__ import annotations

import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Holding:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.received, self.released = threading.Event(), threading.Event()

    def _hold(self) -> None:
        self.received.set()
        self.released.wait(self.deadline)

    def release(self) -> None:
        self.released.set()


class HoldingWebhookReceiver(_Holding):
    """Records each POST as (headers, body); answers 200 once released."""

    def __init__(self, deadline: float) -> None:
        super().__init__(deadline)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((dict(self.headers), body))
                outer._hold()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


class HoldingSmtpServer(_Holding):
    """Just enough SMTP for Django's backend (no TLS, no auth): records each message's data and
    answers its end (`.`) with 250 once released."""

    def __init__(self, deadline: float) -> None:
        super().__init__(deadline)
        self.messages: list[bytes] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 faults ESMTP\r\n")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    if verb == b"DATA":
                        self.wfile.write(b"354 go on\r\n")
                        outer.messages.append(self._data())
                        outer._hold()
                    self.wfile.write(
                        b"250 ok\r\n"
                        if verb in (b"EHLO", b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP", b"DATA")
                        else b"502 not here\r\n"
                    )

            def _data(self) -> bytes:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                return b"".join(lines)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
