#!/usr/bin/python3
"""The route tests' target: it tells a client which address reached it, so a client behind
a chain of proxies sees which proxy carried it.

Usage: whoami.py HOST PORT [http|tcp]
http (the default): answers every GET with that address and a newline.
tcp: writes that address padded with spaces to 16 bytes, then echoes until the client closes.
"""

import http.server
import socketserver
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Tcp(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(self.client_address[0].encode().ljust(16))
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data)


class TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def handle_error(self, request, client_address):
        # A client cut off by a killed proxy resets its connection: expected, not news.
        pass


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "tcp":
        srv = TcpServer((host, port), Tcp)
    else:
        srv = http.server.ThreadingHTTPServer((host, port), Handler)
        srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
