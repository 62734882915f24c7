#!/usr/bin/python3
"""A one-line HTTP server for the route tests: answers every GET with the address the
connection came from, so a client behind a chain of proxies sees which proxy reached it.

Usage: whoami_http.py HOST PORT
"""

import http.server
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


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    srv = http.server.ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
