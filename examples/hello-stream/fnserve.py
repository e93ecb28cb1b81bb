"""A minimal `http-stream` (Fn Project format) server on Python's standard library.

The executor (or Fn) sets FN_LISTENER=unix:/tmp/iofs/lsnr.sock and sends each call as
`POST /call` on that socket. As Fn's FDKs do, this binds a "phony" socket first and
symlinks lsnr.sock to it once it listens, so the socket never exists before it answers.
"""

import os
import socketserver
from http.server import BaseHTTPRequestHandler


class _Call(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves every call

    def do_POST(self):
        self.respond(*self.server.function(self.headers, self.body()))

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def respond(self, status, headers, answer):
        self.send_response(200)
        self.send_header("Fn-Http-Status", str(status))
        for name, value in headers.items():
            if name.lower() == "content-type":
                self.send_header("Content-Type", value)
            else:
                self.send_header("Fn-Http-H-" + name, value)
        self.send_header("Content-Length", str(len(answer)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):
        pass  # stdout/stderr are the function's log


def serve(function, handler=_Call):
    """Serves `function(headers, body) -> (status, headers, body)` until killed."""
    path = os.environ["FN_LISTENER"].removeprefix("unix:")
    directory, name = os.path.split(path)
    phony = os.path.join(directory, "phony" + name)
    server = socketserver.UnixStreamServer(phony, handler)
    server.function = function
    os.chmod(phony, 0o666)
    os.symlink("phony" + name, path)
    server.serve_forever()
