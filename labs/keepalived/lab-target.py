#!/usr/bin/env python3
"""The lab's target host: what the SOCKS servers connect out to.

HTTP on ADDR:PORT answers GET / with "egress <address>\n", the address the connection came
from (which SOCKS server the client egressed through); GET /stream?s=N sends that line every
100 ms for N seconds (a long session). UDP on ADDR:PORT answers each datagram with
"egress <address> " followed by the datagram.
    lab-target.py ADDR PORT
"""
import http.server
import socket
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        line = f"egress {self.client_address[0]}\n".encode()
        if self.path.startswith("/stream?s="):
            seconds = min(float(self.path.split("=", 1)[1] or 0), 600)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(int(seconds * 10)):
                self.wfile.write(line)
                self.wfile.flush()
                time.sleep(0.1)
            return
        body = line
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def udp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, src = s.recvfrom(65535)
        s.sendto(f"egress {src[0]} ".encode() + data, src)


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    threading.Thread(target=udp, args=(addr, port), daemon=True).start()
    server = http.server.ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 1024
    server.serve_forever()


if __name__ == "__main__":
    main()
