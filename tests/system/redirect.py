#!/usr/bin/env python3
"""System test: relayd's `redirect` as a kernel data path (nftables DNAT + conntrack).

Namespaces (made and removed here; addresses 10.79.0.0/16 only):
    hsr-c    client        10.79.1.10, sources 10.79.1.50-79 (census), 10.79.1.100-149 (load)
    hsr-r    relay/router  10.79.1.1 (clients), 10.79.2.1 (servers' bridge), VIP 10.79.0.100;
                           hasocks relay with a redirect on VIP:1080 and a relay on VIP:1081
                           (same table and key), a least-states redirect on VIP:1082, targets (HTTP 8080 answering the peer's
                           address, TCP 7 that says the peer's address then echoes, UDP 7 echo)
    hsr-s1..3 SOCKS servers 10.79.2.11-13, default route via the relay

Points: curl through the redirect (the server logs the client's own address); census of 30
sources, redirect = relay; kill -9 a server under 50 clients (time to out of the kernel map,
only its sessions fail, fast); its return moves nobody mid-session; least-states sends new
sessions away from the host that holds the most; `session timeout` is conntrack's idle
timeout for the redirect's flows and they keep it across map rewrites, reload and upgrade;
`nft list ruleset` still works with our table in it; reload and upgrade under
load with 0 failures; UDP ASSOCIATE straight between client and server; a foreign nft table
survives start, reload and exit, ours is removed on exit; without CAP_NET_ADMIN a redirect
config is refused naming file:line while a relay-only config runs.

Run as root: python3 tests/system/redirect.py [--out DIR]   (HASOCKS_BIN or target/release)
Exit status 0 when every point holds; the report goes to DIR/redirect.md and .json.
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ME = os.path.abspath(__file__)
VIP, RPORT, UPORT, LPORT = "10.79.0.100", 1080, 1081, 1082
TARGET = "10.79.2.1"
SERVERS = {"s1": "10.79.2.11", "s2": "10.79.2.12", "s3": "10.79.2.13"}
CENSUS = [f"10.79.1.{i}" for i in range(50, 80)]
LOAD = [f"10.79.1.{i}" for i in range(100, 150)]
RUN = "/run/hasocks-redirect-test"
NS = ["hsr-c", "hsr-r"] + [f"hsr-{s}" for s in SERVERS]
STEP = 5.0
# The redirect's `session timeout`: far below conntrack's default (5 days), so a flow that
# lost its timeout object shows.
IDLE = 60


# ---------------------------------------------------------------- client side (in hsr-c)

async def socks(src, port, host, tport):
    r, w = await asyncio.wait_for(asyncio.open_connection(VIP, port, local_addr=(src, 0)), STEP)
    w.write(b"\x05\x01\x00")
    if await asyncio.wait_for(r.readexactly(2), STEP) != b"\x05\x00":
        raise RuntimeError("method")
    w.write(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", tport))
    rep = await asyncio.wait_for(r.readexactly(10), STEP)
    if rep[1] != 0:
        raise RuntimeError(f"rep{rep[1]}")
    return r, w


async def egress(src, port):
    """The server a session from `src` through `port` leaves by (the echo target says it)."""
    r, w = await socks(src, port, TARGET, 7)
    try:
        return (await asyncio.wait_for(r.readline(), STEP)).decode().strip()
    finally:
        w.close()


async def census(out):
    res = {}
    for src in CENSUS:
        one = []
        for port in (RPORT, RPORT, UPORT):
            try:
                one.append(await egress(src, port))
            except Exception as e:  # noqa: BLE001 - recorded as the failure kind
                one.append(f"error:{type(e).__name__}")
        res[src] = one
    json.dump(res, open(out, "w"))


async def session(src, until, log):
    """Sessions of ~3 s each (a 100 ms echo), one after another, until `until`."""
    while time.monotonic() < until:
        rec = {"src": src, "start": time.monotonic()}
        try:
            r, w = await socks(src, RPORT, TARGET, 7)
            rec["server"] = (await asyncio.wait_for(r.readline(), STEP)).decode().strip()
            end = time.monotonic() + 3.0
            n = 0
            while time.monotonic() < end:
                msg = f"{src} {n}\n".encode()
                w.write(msg)
                if await asyncio.wait_for(r.readexactly(len(msg)), STEP) != msg:
                    raise RuntimeError("echo")
                n += 1
                await asyncio.sleep(0.1)
            w.close()
            rec["ok"] = True
        except Exception as e:  # noqa: BLE001
            rec["ok"] = False
            rec["error"] = type(e).__name__
        rec["end"] = time.monotonic()
        log.append(rec)
        if not rec["ok"]:
            await asyncio.sleep(0.05)


async def load(seconds, out):
    log = []
    until = time.monotonic() + float(seconds)
    await asyncio.gather(*(session(s, until, log) for s in LOAD))
    json.dump(log, open(out, "w"))


async def hold(port, n, out):
    """Opens `n` sessions through `port` one after another, writes their servers to `out`,
    and holds them open until standard input closes."""
    held, servers = [], []
    for _ in range(int(n)):
        try:
            r, w = await socks("10.79.1.10", int(port), TARGET, 7)
            servers.append((await asyncio.wait_for(r.readline(), STEP)).decode().strip())
            held.append((r, w))
        except Exception as e:  # noqa: BLE001 - recorded as the failure kind
            servers.append(f"error:{type(e).__name__}")
    json.dump(servers, open(out + ".tmp", "w"))
    os.replace(out + ".tmp", out)
    # Each line on standard input: one echoed line on every session (traffic that refreshes
    # their conntrack entries); rounds and echoes so far go to `out`.ping.
    rounds, echoed = 0, 0
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        rounds += 1
        for r, w in held:
            try:
                w.write(b"ping\n")
                await w.drain()
                echoed += (await asyncio.wait_for(r.readline(), STEP)) == b"ping\n"
            except Exception:  # noqa: BLE001 - counted as not echoed
                pass
        json.dump({"rounds": rounds, "echoed": echoed}, open(out + ".ping.tmp", "w"))
        os.replace(out + ".ping.tmp", out + ".ping")
    for _, w in held:
        w.close()


def udp(out):
    """UDP ASSOCIATE through the redirect: the reply names the server; datagrams go there."""
    res = {}
    c = socket.create_connection((VIP, RPORT), timeout=STEP, source_address=("10.79.1.10", 0))
    c.sendall(b"\x05\x01\x00")
    assert c.recv(2) == b"\x05\x00"
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("10.79.1.10", 0))
    u.settimeout(2)
    c.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("10.79.1.10") + struct.pack(">H", u.getsockname()[1]))
    rep = c.recv(10)
    relay_addr = socket.inet_ntoa(rep[4:8]), struct.unpack(">H", rep[8:10])[0]
    res["reply"] = list(relay_addr)
    got = 0
    for i in range(10):
        data = f"dgram {i}".encode()
        u.sendto(b"\x00\x00\x00\x01" + socket.inet_aton(TARGET) + struct.pack(">H", 7) + data, relay_addr)
        try:
            back, frm = u.recvfrom(2048)
            if back.endswith(data):
                got += 1
                res["from"] = list(frm)
        except socket.timeout:
            pass
    res["echoed"] = got
    c.close()
    json.dump(res, open(out, "w"))


# ---------------------------------------------------------------- targets (in hsr-r)

async def targets():
    async def echo(r, w):
        w.write((w.get_extra_info("peername")[0] + "\n").encode())
        try:
            while data := await r.read(4096):
                w.write(data)
                await w.drain()
        except ConnectionError:
            pass
        w.close()

    async def http(r, w):
        try:
            await r.readuntil(b"\r\n\r\n")
            body = (w.get_extra_info("peername")[0] + "\n").encode()
            w.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await w.drain()
        except Exception:  # noqa: BLE001
            pass
        w.close()

    class Udp(asyncio.DatagramProtocol):
        def connection_made(self, t):
            self.t = t

        def datagram_received(self, data, addr):
            self.t.sendto(data, addr)

    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Udp, local_addr=(TARGET, 7))
    s1 = await asyncio.start_server(echo, TARGET, 7)
    s2 = await asyncio.start_server(http, TARGET, 8080)
    await asyncio.gather(s1.serve_forever(), s2.serve_forever())


# ---------------------------------------------------------------- the test

def sh(*cmd, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stdout}{p.stderr}")
    return p


def nsx(ns, *cmd, **kw):
    return sh("ip", "netns", "exec", ns, *cmd, **kw)


def teardown():
    for ns in NS:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def binary():
    b = os.environ.get("HASOCKS_BIN") or os.path.join(ROOT, "target", "release", "hasocks")
    if not os.access(b, os.X_OK):
        raise SystemExit(f"no hasocks binary at {b}: build it or set HASOCKS_BIN")
    return os.path.abspath(b)


RELAYD = f"""interval 1
timeout 500
socket "{RUN}/relay.sock"
table <socks> {{ 10.79.2.11, 10.79.2.12, 10.79.2.13 }}
redirect "socks" {{
    listen on {VIP} port {RPORT} interface hsr-rc
    forward to <socks> port 1080 mode source-hash "lab" check tcp
    session timeout {IDLE}
}}
relay "user" {{
    listen on {VIP} port {UPORT}
    session timeout 0
    forward to <socks> port 1080 mode source-hash "lab" check tcp
}}
table <least> {{ 10.79.2.11, 10.79.2.12, 10.79.2.13 }}
redirect "least" {{
    listen on {VIP} port {LPORT} interface hsr-rc
    forward to <least> port 1080 mode least-states check tcp
}}
"""
RELAY_ONLY = f"""interval 1
table <socks> {{ 10.79.2.11, 10.79.2.12, 10.79.2.13 }}
relay "user" {{
    listen on {VIP} port {UPORT}
    forward to <socks> port 1080 mode source-hash "lab" check tcp
}}
"""


def setup():
    teardown()
    os.makedirs(RUN, exist_ok=True)
    for ns in NS:
        sh("ip", "netns", "add", ns)
        nsx(ns, "ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "hsr-rc", "netns", "hsr-r", "type", "veth", "peer", "name", "eth0", "netns", "hsr-c")
    nsx("hsr-r", "ip", "addr", "add", "10.79.1.1/24", "dev", "hsr-rc")
    nsx("hsr-r", "ip", "link", "set", "hsr-rc", "up")
    nsx("hsr-r", "ip", "addr", "add", f"{VIP}/32", "dev", "lo")
    nsx("hsr-r", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    nsx("hsr-c", "ip", "addr", "add", "10.79.1.10/24", "dev", "eth0")
    for a in CENSUS + LOAD:
        nsx("hsr-c", "ip", "addr", "add", f"{a}/24", "dev", "eth0")
    nsx("hsr-c", "ip", "link", "set", "eth0", "up")
    nsx("hsr-c", "ip", "route", "add", "default", "via", "10.79.1.1")
    nsx("hsr-r", "ip", "link", "add", "br0", "type", "bridge")
    nsx("hsr-r", "ip", "addr", "add", "10.79.2.1/24", "dev", "br0")
    nsx("hsr-r", "ip", "link", "set", "br0", "up")
    for s, ip in SERVERS.items():
        sh("ip", "link", "add", f"hsr-{s}", "netns", "hsr-r", "type", "veth", "peer", "name", "eth0", "netns", f"hsr-{s}")
        nsx("hsr-r", "ip", "link", "set", f"hsr-{s}", "master", "br0", "up")
        nsx(f"hsr-{s}", "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        nsx(f"hsr-{s}", "ip", "link", "set", "eth0", "up")
        nsx(f"hsr-{s}", "ip", "route", "add", "default", "via", "10.79.2.1")
    with open(f"{RUN}/relayd.conf", "w") as f:
        f.write(RELAYD)


procs = {}


def start_server(s, binp):
    ip = SERVERS[s]
    conf = f"{RUN}/{s}.conf"
    with open(conf, "w") as f:
        f.write(f"internal: {ip} port = 1080\nexternal: {ip}\nclientmethod: none\nsocksmethod: none\n"
                f"logoutput: stderr\nhasocks.socket: {RUN}/{s}.sock\n"
                "client pass { from: 0/0 to: 0/0 }\n"
                "socks pass { from: 0/0 to: 0/0 command: connect udpassociate udpreply log: connect }\n")
    log = open(f"{RUN}/{s}.log", "a")
    procs[s] = subprocess.Popen(["ip", "netns", "exec", f"hsr-{s}", binp, "server", "-f", conf],
                                stdout=log, stderr=subprocess.STDOUT)


def start_relay(binp, conf=None, extra=()):
    log = open(f"{RUN}/relay.log", "a")
    return subprocess.Popen(["ip", "netns", "exec", "hsr-r", binp, "relay", "-f", conf or f"{RUN}/relayd.conf", *extra],
                            stdout=log, stderr=subprocess.STDOUT)


def tables():
    p = nsx("hsr-r", "nft", "-j", "list", "tables")
    return sorted(f'{t["table"]["family"]} {t["table"]["name"]}'
                  for t in json.loads(p.stdout)["nftables"] if "table" in t)


def kernel_map():
    p = nsx("hsr-r", "nft", "-j", "list", "map", "inet", "hasocks", "r0_0", check=False)
    if p.returncode != 0:
        return None
    for o in json.loads(p.stdout)["nftables"]:
        if "map" in o:
            return {e[0]: e[1]["concat"][0] for e in o["map"].get("elem", [])}
    return None


def least_slots():
    """Slots per server of the least-states rule's map (None: no rule)."""
    p = nsx("hsr-r", "nft", "list", "chain", "inet", "hasocks", "prerouting", check=False)
    for line in p.stdout.splitlines():
        if f"dport {LPORT} " in line and "numgen" in line:
            return {ip: line.count(f" {ip} . 1080") for ip in SERVERS.values()}
    return None


def states(port):
    """Live tracked flows per server of the redirect on `port`, as conntrack lists them."""
    p = nsx("hsr-r", "conntrack", "-L", "-p", "tcp", "--orig-dst", VIP, "--orig-port-dst", str(port),
            check=False)
    out = {ip: 0 for ip in SERVERS.values()}
    for line in p.stdout.splitlines():
        w = line.split()
        srcs = [x[4:] for x in w if x.startswith("src=")]
        if len(srcs) == 2 and "TIME_WAIT" not in w and "CLOSE" not in w and srcs[1] in out:
            out[srcs[1]] += 1
    return out


def held(port, n, out):
    """A client holding `n` sessions through `port` (see `hold`); its servers once open."""
    if os.path.exists(out):
        os.remove(out)
    p = subprocess.Popen(["ip", "netns", "exec", "hsr-c", sys.executable, ME, "client", "hold", str(port), str(n),
                          out], stdin=subprocess.PIPE)
    got = wait(lambda: os.path.exists(out) and os.path.getsize(out) > 0 and json.load(open(out)), 30, 0.1)
    return p, got or []


def ping(p, out, rounds):
    """One echoed line on each session that `held` holds; true when all came back."""
    p.stdin.write(b"\n")
    p.stdin.flush()
    got = wait(lambda: os.path.exists(out + ".ping") and (j := json.load(open(out + ".ping")))["rounds"] == rounds
               and j, 15, 0.05)
    return got


def idle_timeouts(port, src):
    """Seconds left before conntrack forgets each established flow from `src` to `port`."""
    p = nsx("hsr-r", "conntrack", "-L", "-p", "tcp", "--orig-dst", VIP, "--orig-port-dst", str(port),
            "--orig-src", src, check=False)
    return sorted(int(line.split()[2]) for line in p.stdout.splitlines() if "ESTABLISHED" in line.split())


def wait(pred, timeout=15.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def client(*args, timeout=120):
    return nsx("hsr-c", sys.executable, ME, "client", *args, timeout=timeout)


def run_load(seconds, out):
    return subprocess.Popen(["ip", "netns", "exec", "hsr-c", sys.executable, ME, "client", "load", str(seconds), out])


def relay_pids():
    out = subprocess.run(["ip", "netns", "pids", "hsr-r"], capture_output=True, text=True).stdout.split()
    pids = []
    for p in out:
        try:
            cmd = open(f"/proc/{p}/cmdline").read().split("\0")
        except OSError:
            continue
        if len(cmd) > 1 and cmd[1] == "relay":
            pids.append(int(p))
    return sorted(pids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "system-redirect"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    binp = binary()
    points, figures = [], {}

    def point(name, ok, detail):
        points.append({"point": name, "ok": bool(ok), "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    setup()
    try:
        tgt = subprocess.Popen(["ip", "netns", "exec", "hsr-r", sys.executable, ME, "targets"])
        # A foreign table: ours must never touch it.
        nsx("hsr-r", "nft", "-f", "-", input="table inet hasocks-foreign {\n chain c {\n"
            "  type filter hook forward priority 10; policy accept;\n  counter\n }\n}\n")
        for s in SERVERS:
            start_server(s, binp)
        relay = start_relay(binp)
        ready = wait(lambda: (m := kernel_map()) and len(set(m.values())) == 3 and m)
        listed = nsx("hsr-r", "nft", "list", "ruleset", check=False)
        point("start", ready is not None and "inet hasocks-foreign" in tables() and listed.returncode == 0,
              f"map of 4096 buckets over 3 servers; tables {tables()}; nft list ruleset exits {listed.returncode}")

        # curl through the redirect; the server logs the client's own address.
        p = nsx("hsr-c", "curl", "-s", "--max-time", "5", "--interface", "10.79.1.10",
                "--socks5", f"{VIP}:{RPORT}", f"http://{TARGET}:8080/", check=False)
        time.sleep(0.3)
        logs = "".join(open(f"{RUN}/{s}.log").read() for s in SERVERS)
        point("curl", p.returncode == 0 and p.stdout.strip() in SERVERS.values() and "10.79.1.10" in logs,
              f"curl egress {p.stdout.strip()!r}; a server log names 10.79.1.10: {'10.79.1.10' in logs}")

        # Census: the redirect twice and the relay once, per source.
        client("census", f"{a.out}/census.json")
        c = json.load(open(f"{a.out}/census.json"))
        same = sum(1 for v in c.values() if v[0] == v[1] == v[2] and v[0] in SERVERS.values())
        spread = sorted({v[0] for v in c.values()})
        point("census", same == 30, f"{same}/30 sources keep one server and the relay agrees; servers used {spread}")
        figures["census"] = c

        # The control socket: show redirects, redirect disable|enable.
        ctl = [binp, "ctl", "-s", f"{RUN}/relay.sock"]
        shown = nsx("hsr-r", *ctl, "show", "redirects", check=False).stdout
        t0 = time.monotonic()
        off = nsx("hsr-r", *ctl, "redirect", "disable", "socks", check=False).returncode == 0
        gone = wait(lambda: kernel_map() is None, 5, 0.01)
        t_off = time.monotonic() - t0
        t0 = time.monotonic()
        on = nsx("hsr-r", *ctl, "redirect", "enable", "socks", check=False).returncode == 0
        back = wait(lambda: (m := kernel_map()) and len(set(m.values())) == 3, 5, 0.01)
        t_on = time.monotonic() - t0
        point("ctl", "redirect\tsocks" in shown.replace(" ", "") and "active" in shown and off and gone
              and on and back,
              f"show redirects lists it active; disable: out of the kernel in {t_off:.3f} s, enable: back in"
              f" {t_on:.3f} s")

        # least-states: 10 sessions held on s1 (opened while s2 and s3 are disabled), then 12
        # new ones with all three up: s1 takes fewer than its round robin third.
        busy, others = SERVERS["s1"], [SERVERS["s2"], SERVERS["s3"]]
        for ip in others:
            nsx("hsr-r", *ctl, "host", "disable", ip, check=False)
        only = wait(lambda: (m := least_slots()) and m[busy] and not any(m[o] for o in others), 5, 0.02)
        first, pinned = held(LPORT, 10, f"{a.out}/least-held.json")
        for ip in others:
            nsx("hsr-r", *ctl, "host", "enable", ip, check=False)
        # The next count (within 1 s of the hosts' return) weighs the map against s1.
        weighted = wait(lambda: (m := least_slots()) and all(m[o] > m[busy] > 0 for o in others) and m, 10, 0.05)
        counts_before = states(LPORT)
        second, fresh = held(LPORT, 12, f"{a.out}/least-new.json")
        counts_after = states(LPORT)
        for p in (second, first):
            p.stdin.close()
            p.wait()
        new_on = {ip: fresh.count(ip) for ip in SERVERS.values()}
        figures["least_states"] = {"held_on": pinned, "slots": weighted, "states_before": counts_before,
                                   "new_sessions_on": new_on, "states_after": counts_after}
        point("least-states", only and pinned == [busy] * 10 and weighted and len(fresh) == 12
              and sum(new_on.values()) == 12 and new_on[busy] * 3 < 12,
              f"10 sessions held on {busy}; conntrack states {counts_before}; map slots {weighted};"
              f" 12 new sessions went {new_on} (round robin would give each 4); states after {counts_after}")
        # The source-hash redirect had s2 and s3 disabled too: all three back before the next point.
        wait(lambda: (m := kernel_map()) and len(set(m.values())) == 3, 10, 0.05)

        # kill -9 a server under 50 clients; it returns 6 s later.
        lp = run_load(16, f"{a.out}/load-failover.json")
        time.sleep(4)
        victim_ip = SERVERS["s2"]
        t_kill = time.monotonic()
        procs["s2"].send_signal(signal.SIGKILL)
        procs["s2"].wait()
        out = wait(lambda: (m := kernel_map()) is not None and victim_ip not in m.values(), 10, 0.01)
        t_out = time.monotonic() - t_kill if out else None
        time.sleep(max(0.0, 6 - (time.monotonic() - t_kill)))
        t_back = time.monotonic()
        start_server("s2", binp)
        back = wait(lambda: (m := kernel_map()) is not None and victim_ip in m.values(), 10, 0.02)
        t_in = time.monotonic() - t_back if back else None
        lp.wait()
        log = json.load(open(f"{a.out}/load-failover.json"))
        failed = [r for r in log if not r["ok"]]
        # Each source's server before the kill (placement is by source): a session that failed
        # before learning its server belongs to the server its source was placed on.
        placed = {r["src"]: r["server"] for r in log if r["ok"] and r["end"] < t_kill}
        victim_failed = [r for r in failed if r.get("server", placed.get(r["src"])) == victim_ip]
        others = [r for r in failed if r.get("server", placed.get(r["src"])) != victim_ip]
        # A session to the victim that was open at the kill: how long until it failed.
        fail_after = [round(r["end"] - t_kill, 3) for r in victim_failed if r["start"] < t_kill]
        # Until the verdict the victim's sources are refused at once; then they reach others.
        last_fail = max((r["end"] - t_kill for r in victim_failed), default=None)
        # Sessions open across the return that are not on the victim: none may fail.
        across = [r for r in log if r["start"] < t_back < r["end"]]
        across_failed = [r for r in across if not r["ok"]]
        figures["failover"] = {"sessions": len(log), "failed": len(failed), "victim_failed": len(victim_failed),
                               "other_failed": others[:5], "out_of_map_s": t_out, "back_in_map_s": t_in,
                               "victim_fail_after_s": fail_after[:10],
                               "victim_last_failure_s": last_fail,
                               "open_across_return": len(across), "failed_across_return": len(across_failed)}
        point("failover", t_out is not None and not others and victim_failed and max(fail_after or [9]) < 1.5,
              f"out of the kernel map {t_out and round(t_out, 3)} s after kill -9 (check interval 1 s, timeout 500 ms);"
              f" {len(victim_failed)} sessions of the killed server's sources failed (open ones after {fail_after[:5]} s,"
              f" the last {last_fail and round(last_fail, 3)} s after the kill),"
              f" {len(others)} others failed of {len(log)}")
        point("return", t_in is not None and not across_failed,
              f"back in the map {t_in and round(t_in, 3)} s after its start; {len(across)} sessions open across"
              f" its return, {len(across_failed)} failed")

        # session timeout: conntrack forgets an idle flow after IDLE s, not its default 5 days,
        # and a flow keeps that across a map rewrite (a host disabled and enabled) and, below,
        # across reload and upgrade.
        idle_out = f"{a.out}/idle-held.json"
        idle, idle_on = held(RPORT, 3, idle_out)
        t_open = idle_timeouts(RPORT, "10.79.1.10")
        other = next(ip for ip in SERVERS.values() if ip not in idle_on)
        nsx("hsr-r", *ctl, "host", "disable", other, check=False)
        rewritten = wait(lambda: (m := kernel_map()) and other not in m.values(), 5, 0.02)
        nsx("hsr-r", *ctl, "host", "enable", other, check=False)
        rewritten = rewritten and wait(lambda: (m := kernel_map()) and len(set(m.values())) == 3, 5, 0.02)
        echoed = ping(idle, idle_out, 1)
        t_rewrite = idle_timeouts(RPORT, "10.79.1.10")
        point("session timeout", len(idle_on) == 3 and len(t_open) == 3 and max(t_open) <= IDLE
              and rewritten and echoed and echoed["echoed"] == 3 and len(t_rewrite) == 3 and max(t_rewrite) <= IDLE,
              f"3 held flows: {t_open} s left of session timeout {IDLE} (conntrack's default: 432000);"
              f" after the map was rewritten ({other} out and back) and the sessions echoed: {t_rewrite}")

        # Reload and upgrade under load: 0 failures; the foreign table survives.
        lp = run_load(10, f"{a.out}/load-upgrade.json")
        time.sleep(2)
        old = relay_pids()
        os.kill(old[0], signal.SIGHUP)
        time.sleep(2)
        foreign_after_reload = "inet hasocks-foreign" in tables()
        os.kill(old[0], signal.SIGUSR2)
        new = wait(lambda: (p := [x for x in relay_pids() if x not in old]) and p, 10)
        gone_old = wait(lambda: old[0] not in relay_pids(), 15)
        lp.wait()
        log = json.load(open(f"{a.out}/load-upgrade.json"))
        failed = [r for r in log if not r["ok"]]
        still = kernel_map()
        echoed = ping(idle, idle_out, 2)
        t_upgrade = idle_timeouts(RPORT, "10.79.1.10")
        idle.stdin.close()
        idle.wait()
        point("reload+upgrade", not failed and new and gone_old and still and len(set(still.values())) == 3
              and foreign_after_reload and echoed and echoed["echoed"] == 6 and len(t_upgrade) == 3
              and max(t_upgrade) <= IDLE,
              f"{len(log)} sessions, {len(failed)} failed; new relay pid {new}, old one gone: {bool(gone_old)};"
              f" table kept by the successor: {bool(still)}; foreign table after reload: {foreign_after_reload};"
              f" 3 flows held across it still echo, with {t_upgrade} s left of their session timeout")

        # UDP ASSOCIATE: the reply names the server; datagrams go to it directly.
        client("udp", f"{a.out}/udp.json")
        u = json.load(open(f"{a.out}/udp.json"))
        point("udp", u["reply"][0] in SERVERS.values() and u["echoed"] == 10,
              f"reply names {u['reply']}, {u['echoed']}/10 datagrams echoed straight from {u.get('from')}")

        # Clean exit: our table goes, the foreign one stays.
        pid = relay_pids()[0]
        os.kill(pid, signal.SIGTERM)
        wait(lambda: pid not in relay_pids(), 15)
        t = tables()
        point("exit", "inet hasocks" not in t and "inet hasocks-foreign" in t, f"tables after exit: {t}")

        # Without CAP_NET_ADMIN: the redirect config is refused naming file:line, a relay runs.
        drop = ["setpriv", "--inh-caps", "-net_admin", "--bounding-set", "-net_admin"]
        p = nsx("hsr-r", *drop, binp, "relay", "-f", f"{RUN}/relayd.conf", check=False, timeout=20)
        relay_only = f"{RUN}/relay-only.conf"
        with open(relay_only, "w") as f:
            f.write(f'socket "{RUN}/relay-only.sock"\n' + RELAY_ONLY)
        r = subprocess.Popen(["ip", "netns", "exec", "hsr-r", *drop, binp, "relay", "-f", relay_only],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        up = wait(lambda: nsx("hsr-c", "curl", "-s", "--max-time", "2", "--socks5", f"{VIP}:{UPORT}",
                              f"http://{TARGET}:8080/", check=False).returncode == 0, 10, 0.2)
        r.terminate()
        r.wait()
        err = (p.stderr + p.stdout).strip().splitlines()[-1:] or [""]
        point("no CAP_NET_ADMIN", p.returncode != 0 and f"{RUN}/relayd.conf:5:1" in err[0] and up,
              f"exit {p.returncode}: {err[0]!r}; relay-only config serves: {bool(up)}")
        tgt.terminate()
    finally:
        for pr in procs.values():
            if pr.poll() is None:
                pr.kill()
        for pid in relay_pids():
            os.kill(pid, signal.SIGKILL)
        teardown()

    ok = all(p["ok"] for p in points) and len(points) >= 12
    with open(f"{a.out}/redirect.json", "w") as f:
        json.dump({"points": points, "figures": figures}, f, indent=1)
    with open(f"{a.out}/redirect.md", "w") as f:
        f.write(f"# redirect system test ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())})\n\n")
        for p in points:
            f.write(f"- {'PASS' if p['ok'] else 'FAIL'} **{p['point']}**: {p['detail']}\n")
        f.write("\n```\n" + json.dumps(figures.get("failover", {}), indent=1) + "\n```\n")
    print(f"report: {a.out}/redirect.md")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        cmd, args = sys.argv[2], sys.argv[3:]
        if cmd == "census":
            asyncio.run(census(*args))
        elif cmd == "load":
            asyncio.run(load(*args))
        elif cmd == "udp":
            udp(*args)
        elif cmd == "hold":
            asyncio.run(hold(*args))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "targets":
        asyncio.run(targets())
        sys.exit(0)
    if os.geteuid() != 0:
        raise SystemExit("run as root: it makes network namespaces")
    sys.exit(main())
