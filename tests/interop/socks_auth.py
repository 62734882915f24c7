#!/usr/bin/env python3
"""HTTP GET through a SOCKS5 proxy with a user name and password, with PySocks (Debian's
python3-socks) or python-socks (Debian's python3-python-socks).

usage: socks_auth.py pysocks|python-socks PROXY_HOST PROXY_PORT USER PASSWORD URL_HOST URL_PORT
prints the response body; exit 0 on an HTTP 200, 2 when the proxy refused (auth or rule).
"""
import sys


def get_over(sock, host, port):
    sock.sendall(f"GET /index.txt HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"unexpected response: {head[:80]!r}")
    return body.decode()


def main():
    lib, phost, pport, user, password, host, port = sys.argv[1:8]
    pport, port = int(pport), int(port)
    try:
        if lib == "pysocks":
            import socks

            s = socks.socksocket()
            s.settimeout(10)
            s.set_proxy(socks.SOCKS5, phost, pport, rdns=True, username=user, password=password)
            s.connect((host, port))
        else:
            from python_socks.sync import Proxy

            proxy = Proxy.from_url(f"socks5://{user}:{password}@{phost}:{pport}", rdns=True)
            s = proxy.connect(dest_host=host, dest_port=port, timeout=10)
    except Exception as e:  # the library's own error type: refused by the proxy
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(get_over(s, host, port), end="")
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
