"""A stand-in "server" process that answers /health only, for tests of a managed server's life cycle."""

from __future__ import annotations


def health_only(delay: float = 0.0) -> str:
    """Python source of a process serving /health (200) on the port in argv[1], after `delay` seconds
    (a model loading); every other path is a 404."""
    return f"""
import http.server, sys, time

time.sleep({delay})

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""
