#!/usr/bin/python3
"""UDP ASSOCIATE interop check with Python's PySocks (Debian python3-socks).

Usage: pysocks_udp.py HOST PORT
Starts a UDP echo server on 127.0.0.1, sends datagrams of several sizes through the SOCKS5
server at HOST:PORT (once with IP targets, once with the target given as the name
"localhost", resolved by the server), and checks every echo and the address the reply is
wrapped with. Exit status 0 when everything came back right, 1 otherwise.
Debian's /usr/bin/python3 is named on purpose: it is the one that has the socks module.
"""

import socket
import sys
import threading

import socks

SIZES = (1, 64, 512, 1400, 8192)


def start_echo():
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))

    def loop():
        while True:
            try:
                data, peer = srv.recvfrom(65535)
            except OSError:
                return
            srv.sendto(data, peer)

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()


def run_case(host, port, echo, by_name):
    """One association: every size once. Returns a list of failure messages."""
    failures = []
    c = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
    # rdns=True makes PySocks send the name in the SOCKS UDP header for the server to resolve.
    c.set_proxy(socks.SOCKS5, host, port, rdns=by_name)
    c.settimeout(5)
    target = ("localhost", echo[1]) if by_name else echo
    label = "name" if by_name else "ip"
    try:
        for i, size in enumerate(SIZES):
            msg = (b"%s-%d-" % (label.encode(), i)).ljust(size, b"x")[:size]
            c.sendto(msg, target)
            data, frm = c.recvfrom(65535)
            if data != msg:
                failures.append("%s: %d-byte datagram came back as %d bytes" % (label, size, len(data)))
            if (frm[0], frm[1]) != echo:
                failures.append("%s: reply wrapped with %r, expected %r" % (label, frm, echo))
    except (OSError, socks.ProxyError) as e:
        failures.append("%s: %s" % (label, e))
    finally:
        c.close()
    return failures


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    echo = start_echo()
    failures = run_case(host, port, echo, by_name=False) + run_case(host, port, echo, by_name=True)
    for f in failures:
        print("FAIL - pysocks udp via %s:%d: %s" % (host, port, f))
    if failures:
        return 1
    print("ok   - pysocks udp via %s:%d: %d datagrams echoed (ip and name targets)" % (host, port, 2 * len(SIZES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
