#!/usr/bin/env python3
"""The lab's client host: SOCKS5 sessions through the shared address, in raw bytes.

Runs inside the client namespace (ip netns exec hsl-client ...; the active-active lab's
hsg-client with LAB_NET=10.78.0 LAB_VIP=10.78.100.100). Times are CLOCK_MONOTONIC
(time.monotonic()), the same clock as the test that injects the faults.

    client.py census              one session from each of 10.77.0.50-79: {source: egress}
    client.py load SECONDS OUT    50 clients for SECONDS (5 of them in long sessions); one JSON
                                  object per session in OUT
    client.py udp SECONDS OUT     one UDP association: a datagram every 100 ms, straight to
                                  the server that answered; JSON with each datagram's fate and
                                  what happened to the control connection
"""
import asyncio
import hashlib
import ipaddress
import json
import os
import socket
import struct
import sys
import time

# The lab's client network (its .20 is the target, .50-79 the sources) and shared address.
NET = os.environ.get("LAB_NET", "10.77.0")
VIP, PORT = os.environ.get("LAB_VIP", f"{NET}.100"), 1080
TARGET, TPORT = f"{NET}.20", 8080
SOURCES = [f"{NET}.{i}" for i in range(50, 80)]
CLIENTS, LONG_CLIENTS = 50, 5
STEP_TIMEOUT = 10.0


class Failed(Exception):
    """A session that did not complete; the message is its kind."""


def kind(e):
    if isinstance(e, Failed):
        return str(e)
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(e, asyncio.IncompleteReadError):
        return "closed"
    return type(e).__name__


async def socks_connect(src, host, port, note=None):
    """SOCKS5 CONNECT through the shared address from `src`; the open streams. The local port
    goes in `note["sport"]`, so a test can tell which relay host tracked the connection."""
    r, w = await asyncio.wait_for(
        asyncio.open_connection(VIP, PORT, local_addr=(src, 0)), STEP_TIMEOUT
    )
    if note is not None:
        note["sport"] = w.get_extra_info("sockname")[1]
    try:
        w.write(b"\x05\x01\x00")
        if await asyncio.wait_for(r.readexactly(2), STEP_TIMEOUT) != b"\x05\x00":
            raise Failed("method")
        w.write(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", port))
        rep = await asyncio.wait_for(r.readexactly(10), STEP_TIMEOUT)
        if rep[1] != 0:
            raise Failed(f"rep{rep[1]}")
        return r, w
    except BaseException:
        w.close()
        raise


async def http_get(src, path, note=None):
    """One HTTP GET to the target through SOCKS; the egress address the target saw."""
    r, w = await socks_connect(src, TARGET, TPORT, note)
    try:
        w.write(f"GET {path} HTTP/1.0\r\nHost: target\r\n\r\n".encode())
        body = b""
        while True:
            # An idle limit, not a total: a long session streams for seconds; a connection
            # whose relay went silent (link down) is given up after STEP_TIMEOUT.
            chunk = await asyncio.wait_for(r.read(65536), STEP_TIMEOUT)
            if not chunk:
                break
            body += chunk
        lines = [l for l in body.decode(errors="replace").splitlines() if l.startswith("egress ")]
        if not body.startswith(b"HTTP/1.0 200") or not lines:
            raise Failed("short")
        # The checksum of what arrived against what the target sent: N times the same line.
        sent = (lines[0] + "\n").encode() * len(lines)
        got = body[body.index(b"\r\n\r\n") + 4:] if b"\r\n\r\n" in body else b""
        if hashlib.sha256(got).digest() != hashlib.sha256(sent).digest():
            raise Failed("checksum")
        return lines[-1].split()[1], len(lines)
    finally:
        w.close()


async def census():
    out = {}
    for src in SOURCES:
        try:
            out[src] = (await http_get(src, "/"))[0]
        except Exception as e:  # recorded, not raised: the census says what failed
            out[src] = "failed: " + kind(e)
    return out


async def client(n, until, results):
    src = SOURCES[n % len(SOURCES)]
    long = n < LONG_CLIENTS
    while time.monotonic() < until:
        t0 = time.monotonic()
        rec = {"client": n, "source": src, "long": long, "t0": t0}
        try:
            # A long session streams for 4 s; it is in flight at any fault.
            egress, lines = await http_get(src, "/stream?s=4" if long else "/", rec)
            if long and lines < 40:
                raise Failed("cut")
            rec.update(ok=True, egress=egress)
        except Exception as e:
            rec.update(ok=False, error=kind(e))
        rec["t1"] = time.monotonic()
        results.append(rec)
        await asyncio.sleep(0.02)


async def load(seconds, out):
    results = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(client(n, until, results) for n in range(CLIENTS)))
    with open(out, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")


async def udp(seconds, out):
    """A UDP association opened through the shared address; datagrams go to the server."""
    src = f"{NET}.10"
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((src, 0))
    u.setblocking(False)
    bnd_ip, bnd_port, reader, writer = await socks_connect_udp(src, u.getsockname())
    ctl = {"opened": time.monotonic(), "server": bnd_ip, "ended": None, "how": None}

    async def watch():
        try:
            data = await reader.read(1)
            ctl["how"] = "eof" if not data else "data"
        except Exception as e:
            ctl["how"] = kind(e)
        ctl["ended"] = time.monotonic()

    watcher = asyncio.ensure_future(watch())
    loop = asyncio.get_running_loop()
    sent = []
    until = time.monotonic() + seconds
    seq = 0
    header = b"\x00\x00\x00\x01" + socket.inet_aton(TARGET) + struct.pack(">H", TPORT)
    while time.monotonic() < until:
        seq += 1
        t = time.monotonic()
        got = False
        try:
            u.sendto(header + f"seq {seq}".encode(), (bnd_ip, bnd_port))
            while True:
                data = await asyncio.wait_for(loop.sock_recv(u, 65535), 0.1)
                if data.endswith(f"seq {seq}".encode()):
                    got = True
                    break
        except (asyncio.TimeoutError, OSError):
            pass
        sent.append({"seq": seq, "t": t, "answered": got})
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
    watcher.cancel()
    writer.close()
    with open(out, "w") as f:
        json.dump({"control": ctl, "datagrams": sent}, f)


async def socks_connect_udp(src, udp_addr):
    r, w = await asyncio.wait_for(
        asyncio.open_connection(VIP, PORT, local_addr=(src, 0)), STEP_TIMEOUT
    )
    w.write(b"\x05\x01\x00")
    if await asyncio.wait_for(r.readexactly(2), STEP_TIMEOUT) != b"\x05\x00":
        raise Failed("method")
    ip, port = udp_addr
    w.write(b"\x05\x03\x00\x01" + socket.inet_aton(ip) + struct.pack(">H", port))
    rep = await asyncio.wait_for(r.readexactly(10), STEP_TIMEOUT)
    if rep[1] != 0:
        raise Failed(f"rep{rep[1]}")
    bnd = str(ipaddress.IPv4Address(rep[4:8]))
    return bnd, struct.unpack(">H", rep[8:10])[0], r, w


def main():
    what = sys.argv[1]
    if what == "census":
        print(json.dumps(asyncio.run(census())))
    elif what == "load":
        asyncio.run(load(float(sys.argv[2]), sys.argv[3]))
    elif what == "udp":
        asyncio.run(udp(float(sys.argv[2]), sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
