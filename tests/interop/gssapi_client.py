"""A SOCKS5 client with GSS-API authentication (RFC 1961) on Python's gssapi package, for the
levels curl does not reach: the context exchange, the protection level (wrapped, or bare
with --nec), then a CONNECT whose request, reply and data are encapsulated when the level
is integrity or confidentiality. The target is an echo server this script runs on
127.0.0.1; the data sent comes back and is compared.

Prints one JSON line: {"ok": bool, "level": granted, "bytes": echoed, "error": ...}.
--replay: after one good session, opens a second connection and sends the first session's
context token again (the server must answer 01 FF).
--sessions N and --bytes B make it a small benchmark (sessions/s, MB/s in the JSON).
"""
import argparse
import json
import socket
import struct
import sys
import threading
import time

import gssapi

LEVELS = {"clear": 0, "integrity": 1, "confidentiality": 2}


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError("proxy closed after %d of %d bytes" % (len(out), n))
        out += b
    return bytes(out)


def read_frame(s):
    ver, mtyp = recv_exact(s, 2)
    if ver != 1:
        raise ValueError("bad RFC 1961 version %d" % ver)
    if mtyp == 0xFF:
        return 0xFF, b""
    (n,) = struct.unpack("!H", recv_exact(s, 2))
    return mtyp, recv_exact(s, n)


def frame(mtyp, token):
    return bytes([1, mtyp]) + struct.pack("!H", len(token)) + token


def echo_server():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)

    def serve(c):
        with c:
            while True:
                b = c.recv(65536)
                if not b:
                    return
                c.sendall(b)

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return ls.getsockname()


class Session:
    def __init__(self, proxy, service, level, nec, replay_token=None, plain=False):
        self.s = socket.create_connection(proxy, timeout=20)
        if plain:
            # Method none: the reference a GSSAPI session is measured against.
            self.s.sendall(b"\x05\x01\x00")
            if recv_exact(self.s, 2) != b"\x05\x00":
                raise RuntimeError("proxy did not select method none")
            self.level, self.first_token = 0, None
            return
        self.s.sendall(b"\x05\x01\x01")
        if recv_exact(self.s, 2) != b"\x05\x01":
            raise RuntimeError("proxy did not select GSSAPI")
        flags = (gssapi.RequirementFlag.mutual_authentication
                 | gssapi.RequirementFlag.replay_detection
                 | gssapi.RequirementFlag.out_of_sequence_detection
                 | gssapi.RequirementFlag.integrity
                 | gssapi.RequirementFlag.confidentiality)
        name = gssapi.Name(service, gssapi.NameType.hostbased_service)
        self.ctx = gssapi.SecurityContext(name=name, usage="initiate", flags=flags)
        token = self.ctx.step()
        self.first_token = token
        if replay_token is not None:
            token = replay_token
        while True:
            self.s.sendall(frame(1, token))
            mtyp, answer = read_frame(self.s)
            if mtyp == 0xFF:
                raise PermissionError("proxy aborted the context establishment (01 ff)")
            token = self.ctx.step(answer)
            if self.ctx.complete:
                break
        asked = bytes([LEVELS[level]])
        tok = asked if nec else self.ctx.wrap(asked, False).message
        self.s.sendall(frame(2, tok))
        mtyp, answer = read_frame(self.s)
        if mtyp == 0xFF:
            raise PermissionError("proxy refused protection level %s (01 ff)" % level)
        got = answer if nec else self.ctx.unwrap(answer).message
        self.level = got[0]
        self.conf = self.level == 2

    def send(self, data):
        if self.level == 0:
            self.s.sendall(data)
            return
        out = bytearray()
        for i in range(0, len(data), 32768):
            out += frame(3, self.ctx.wrap(data[i:i + 32768], self.conf).message)
        self.s.sendall(out)

    def recv_plain(self, n):
        if self.level == 0:
            return recv_exact(self.s, n)
        buf = bytearray()
        while len(buf) < n:
            mtyp, tok = read_frame(self.s)
            if mtyp != 3:
                raise ValueError("expected an encapsulated message, got type %d" % mtyp)
            buf += self.ctx.unwrap(tok).message
        return bytes(buf)

    def connect(self, target):
        ip, port = target
        self.send(b"\x05\x01\x00\x01" + socket.inet_aton(ip) + struct.pack("!H", port))
        reply = self.recv_plain(10)
        if reply[1] != 0:
            raise ConnectionRefusedError("SOCKS reply %02x" % reply[1])


def bind(proxy, a):
    """BIND: the first reply names the port, a peer connects, the second reply names it,
    then bytes both ways, all of it encapsulated at the negotiated level."""
    sess = Session(proxy, a.service, a.level, a.nec, plain=a.plain)
    sess.send(b"\x05\x02\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x00")
    first = sess.recv_plain(10)
    if first[1] != 0:
        raise ConnectionRefusedError("SOCKS reply %02x" % first[1])
    (port,) = struct.unpack("!H", first[8:10])
    peer = socket.create_connection(("127.0.0.1", port), timeout=20)
    second = sess.recv_plain(10)
    if second[1] != 0:
        raise ConnectionRefusedError("second SOCKS reply %02x" % second[1])
    data = bytes(range(256)) * 64
    sess.send(data)
    got = recv_exact(peer, len(data))
    peer.sendall(got[::-1])
    back = sess.recv_plain(len(data))
    if got != data or back != data[::-1]:
        raise ValueError("BIND data differs")
    return {"ok": True, "level": sess.level, "bytes": len(data)}


def udp(proxy, a):
    """UDP ASSOCIATE: datagrams to a UDP echo target and back, each one (SOCKS UDP header
    included) encapsulated at the negotiated level."""
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))

    def serve():
        while True:
            d, src = echo.recvfrom(65535)
            echo.sendto(d, src)

    threading.Thread(target=serve, daemon=True).start()
    sess = Session(proxy, a.service, a.level, a.nec, plain=a.plain)
    sess.send(b"\x05\x03\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x00")
    reply = sess.recv_plain(10)
    if reply[1] != 0:
        raise ConnectionRefusedError("SOCKS reply %02x" % reply[1])
    relay = (socket.inet_ntoa(reply[4:8]), struct.unpack("!H", reply[8:10])[0])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(5)
    header = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", echo.getsockname()[1])
    moved = 0
    for k in range(20):
        payload = bytes([k]) * (100 + 50 * k)
        dg = header + payload
        if sess.level:
            dg = frame(3, sess.ctx.wrap(dg, sess.conf).message)
        u.sendto(dg, relay)
        back, _ = u.recvfrom(65535)
        if sess.level:
            if back[:2] != b"\x01\x03" or struct.unpack("!H", back[2:4])[0] != len(back) - 4:
                raise ValueError("reply datagram is not one encapsulation message")
            back = sess.ctx.unwrap(back[4:]).message
        if back[10:] != payload or back[3] != 1:
            raise ValueError("UDP echo differs")
        moved += len(payload)
    return {"ok": True, "level": sess.level, "bytes": moved}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--service", default="rcmd@localhost")
    ap.add_argument("--level", choices=LEVELS, default="confidentiality")
    ap.add_argument("--nec", action="store_true")
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--bytes", type=int, default=100000)
    ap.add_argument("--plain", action="store_true", help="method none instead of GSSAPI")
    ap.add_argument("--bind", action="store_true", help="a BIND instead of a CONNECT")
    ap.add_argument("--udp", action="store_true", help="a UDP ASSOCIATE instead of a CONNECT")
    a = ap.parse_args()
    host, port = a.proxy.rsplit(":", 1)
    proxy = (host, int(port))
    target = echo_server()
    result = {"ok": False, "level": None, "bytes": 0}
    if a.bind or a.udp:
        try:
            result.update(bind(proxy, a) if a.bind else udp(proxy, a))
        except Exception as e:  # reported, the caller decides
            result["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(result))
        sys.exit(0 if result["ok"] else 1)
    try:
        payload = bytes(range(256)) * (a.bytes // 256 + 1)
        payload = payload[:a.bytes]
        start = time.monotonic()
        moved = 0
        for _ in range(a.sessions):
            sess = Session(proxy, a.service, a.level, a.nec, plain=a.plain)
            sess.connect(target)
            result["level"] = sess.level
            sent = 0
            while sent < len(payload):
                piece = payload[sent:sent + 1048576]
                sess.send(piece)
                if sess.recv_plain(len(piece)) != piece:
                    raise ValueError("echo differs")
                sent += len(piece)
            moved += sent
            sess.s.close()
            first = sess.first_token
        took = time.monotonic() - start
        result.update(ok=True, bytes=moved, seconds=round(took, 4),
                      sessions_per_s=round(a.sessions / took, 1),
                      mb_per_s=round(2 * moved / took / 1e6, 2))
        if a.replay:
            try:
                Session(proxy, a.service, a.level, a.nec, replay_token=first)
                result.update(ok=False, error="replayed token accepted")
            except PermissionError as e:
                result["replay"] = str(e)
    except Exception as e:  # reported, the caller decides
        result["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
