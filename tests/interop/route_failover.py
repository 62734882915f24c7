#!/usr/bin/python3
"""Failover under load through a chaining SOCKS server whose route group has two upstreams.

Usage: route_failover.py --name NAME --proxy HOST:PORT --target HOST:PORT
                         --fail CMD --restore CMD --dead-ip IP
                         [--status URL] [--dante-log FILE] [--clients 50] [--json FILE]

50 client threads run short SOCKS5 CONNECT sessions back to back against the proxy: each
reads the 16-byte line in which the target names the address it was reached from (so the
upstream that carried it), holds the session 50 ms, echoes one byte. After 3 s the --fail
command runs (kill -9 or SIGSTOP of the first upstream), after 9 s the --restore command
(restart or SIGCONT), and the load stops at 15 s. Reported:
  - sessions, failed sessions, split into those in flight on the dead upstream when it
    failed and new sessions (started after the failure) that failed;
  - the time to mark the upstream bad: from hasocks' /status.json (--status, polled every
    20 ms) or Dante's "blacklisting" log line (--dante-log);
  - the return: the first session carried by the upstream again after --restore.
Prints one JSON object (also to --json). Exit status 0; the caller judges the figures.
"""

import argparse
import json
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.request

SESSION_TIMEOUT = 10.0


def session(proxy, target):
    """One session: (ok, upstream address or error)."""
    s = socket.create_connection(proxy, timeout=SESSION_TIMEOUT)
    try:
        s.settimeout(SESSION_TIMEOUT)
        s.sendall(b"\x05\x01\x00")
        if s.recv(2) != b"\x05\x00":
            return False, "greeting refused"
        ip = socket.inet_aton(target[0])
        s.sendall(b"\x05\x01\x00\x01" + ip + struct.pack(">H", target[1]))
        rep = b""
        while len(rep) < 10:
            chunk = s.recv(10 - len(rep))
            if not chunk:
                return False, "closed before the reply"
            rep += chunk
        if rep[1] != 0:
            return False, "reply %02x" % rep[1]
        line = b""
        while len(line) < 16:
            chunk = s.recv(16 - len(line))
            if not chunk:
                return False, "closed before the target spoke"
            line += chunk
        time.sleep(0.05)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            return False, "no echo"
        return True, line.decode().strip()
    finally:
        s.close()


def worker(args, stop, records, lock):
    while not stop.is_set():
        start = time.monotonic()
        try:
            ok, what = session(args.proxy, args.target)
        except OSError as e:
            ok, what = False, type(e).__name__
        end = time.monotonic()
        with lock:
            records.append((start, end, ok, what))
        if not ok:
            time.sleep(0.01)


def poll_status(url, dead, stop, marks):
    """Appends (monotonic time, state of the route via the dead upstream) every 20 ms."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                v = json.load(r)
            for route in v.get("routes", []):
                if route["via"].startswith(dead + ":"):
                    marks.append((time.monotonic(), route["state"]))
        except OSError:
            pass
        time.sleep(0.02)


def dante_blacklisted(log, after_wall):
    """Wall-clock time of the first 'blacklisting' line of Dante's log after `after_wall`."""
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return None
    for m in re.finditer(r"\((\d+\.\d+)\) danted\[\d+\]: .*blacklisting", text):
        t = float(m.group(1))
        if t >= after_wall:
            return t
    return None


def hostport(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--proxy", type=hostport, required=True)
    ap.add_argument("--target", type=hostport, required=True)
    ap.add_argument("--fail", required=True)
    ap.add_argument("--restore", required=True)
    ap.add_argument("--dead-ip", required=True)
    ap.add_argument("--status")
    ap.add_argument("--dante-log")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--json")
    args = ap.parse_args()

    records, lock, stop = [], threading.Lock(), threading.Event()
    marks = []
    threads = [threading.Thread(target=worker, args=(args, stop, records, lock), daemon=True)
               for _ in range(args.clients)]
    if args.status:
        threads.append(threading.Thread(target=poll_status,
                                        args=(args.status, args.dead_ip, stop, marks), daemon=True))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(3)
    wall_fail = time.time()
    subprocess.run(args.fail, shell=True, check=False)
    # Sessions that started before the command returned may have met the upstream alive:
    # they count as in flight on it.
    t_fail = time.monotonic()
    time.sleep(6)
    t_restore = time.monotonic()
    subprocess.run(args.restore, shell=True, check=False)
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(SESSION_TIMEOUT + 2)

    with lock:
        recs = list(records)
    before = [r for r in recs if r[0] < t_fail]
    after = [r for r in recs if r[0] >= t_fail]
    lost_in_flight = [r for r in before if not r[2] and r[1] >= t_fail]
    new_failed = [r for r in after if not r[2]]
    errors = {}
    for r in new_failed + lost_in_flight:
        errors[r[3]] = errors.get(r[3], 0) + 1
    on_dead_before = sum(1 for r in before if r[2] and r[3] == args.dead_ip)
    back = [r for r in recs if r[0] >= t_restore and r[2] and r[3] == args.dead_ip]
    marked_ms = None
    if args.status:
        bad = [t for t, st in marks if t >= t_fail and st == "bad"]
        marked_ms = round((bad[0] - t_fail) * 1000) if bad else None
    elif args.dante_log:
        t = dante_blacklisted(args.dante_log, wall_fail)
        marked_ms = round((t - wall_fail) * 1000) if t else None
    last_new_failure_ms = round((max(r[0] for r in new_failed) - t_fail) * 1000) if new_failed else 0
    out = {
        "name": args.name,
        "sessions": len(recs),
        "sessions_per_s": round(len(recs) / (time.monotonic() - t0), 1),
        "ok_on_dead_upstream_before": on_dead_before,
        "failed": len(lost_in_flight) + len(new_failed),
        "lost_in_flight": len(lost_in_flight),
        "new_failed": len(new_failed),
        "last_new_failure_ms": last_new_failure_ms,
        "marked_bad_ms": marked_ms,
        "back_ms": round((back[0][1] - t_restore) * 1000) if back else None,
        "errors": errors,
    }
    text = json.dumps(out)
    print(text)
    if args.json:
        with open(args.json, "a") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
