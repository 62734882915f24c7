#!/usr/bin/env python3
"""System test: an active-active tier of three hasocks relays behind ECMP, announced by BGP.

Builds the lab (labs/bgp/lab.sh: a BIRD router with BFD and a resilient nexthop group, three
relay hosts each with BIRD and the route health hook, two SOCKS servers), takes a census of
which server 30 client addresses egress through, runs 50 clients (5 in 4 s streams whose
bytes are checksummed) for the whole test, and in turn:
  1. steady state: every relay carries sessions (each relay's share of new sessions);
  2. drains relay1: 0 failed sessions; the time to its withdrawal (0 sessions open, or the
     grace, cut to 6 s here) and which it was;
  3. adds relay1 back: 0 failed sessions;
  4. kill -9 relay2: the time to the route's withdrawal on the router and to the last new
     session that failed; only sessions in flight on it or sent to it before the withdrawal
     may fail, and each failed session that connected must be one that relay2's host tracked
     (conntrack, kept there for hasocks-vip.sh);
  5. census again: 0 client addresses moved to another server.

Run as root: python3 tests/system/bgp_ecmp.py [--out DIR]
Exit status 0 when every point holds; the report goes to DIR/bgp_ecmp.md and .json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "labs", "bgp", "lab.sh")
CLIENT = os.path.join(ROOT, "tests", "system", "client.py")
RUN = "/run/hasocks-bgp-lab"
ENV = {"LAB_NET": "10.78.0", "LAB_VIP": "10.78.100.100"}
STEADY, DRAIN_AT, ADD_AT, KILL_AT, LOAD_SECONDS = 2.0, 8.0, 18.0, 26.0, 34.0
WITHDRAW_GOAL = 1.0
DRAIN_GRACE = 6


def lab(*args, check=True):
    # The drain's grace is cut to DRAIN_GRACE so that the withdrawal falls inside the test
    # under constant load, when the drained relay's last session may never end by itself.
    env = dict(os.environ, HASOCKS_DRAIN_GRACE=str(DRAIN_GRACE))
    p = subprocess.run(["bash", LAB, *args], capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise SystemExit(f"lab.sh {' '.join(args)} failed:\n{p.stdout}{p.stderr}")
    return p.stdout.strip()


def in_client(*args):
    return ["ip", "netns", "exec", "hsg-client", "env", *(f"{k}={v}" for k, v in ENV.items()),
            "python3", CLIENT, *args]


def census():
    out = subprocess.run(in_client("census"), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def sessions_total(relay):
    """The relay's sessions so far (its /status.json), None when it does not answer."""
    p = subprocess.run(["ip", "netns", "exec", f"hsg-{relay}", "curl", "-s", "--max-time", "1",
                        "http://127.0.0.1:9100/status.json"], capture_output=True, text=True)
    try:
        return sum(r["sessions_total"] for r in json.loads(p.stdout)["relays"])
    except (ValueError, KeyError):
        return None


def log_events(name):
    """(wall time, words) per line of a hook's log."""
    out = []
    try:
        for line in open(os.path.join(RUN, f"{name}.log")):
            parts = line.split()
            if len(parts) >= 3 and parts[0].replace(".", "").isdigit():
                out.append((float(parts[0]), parts[2:]))
    except OSError:
        pass
    return out


def in_group(words, nhid):
    """Whether the router hook's logged group ("group 1002/1003/1004") holds `nhid`."""
    return str(nhid) in [m.split(",")[0] for m in words[-1].split("/")]


def tracked(relay):
    """The (client address, client port) of every connection to the shared address that the
    relay host's conntrack holds (it tracks them for hasocks-vip.sh), in any state."""
    p = subprocess.run(["ip", "netns", "exec", f"hsg-{relay}", "conntrack", "-L", "-p", "tcp",
                        "--orig-dst", ENV["LAB_VIP"], "--orig-port-dst", "1080"],
                       capture_output=True, text=True)
    out = set()
    for line in p.stdout.splitlines():
        f = {}
        for k, _, v in (w.partition("=") for w in line.split() if "=" in w):
            f.setdefault(k, v)  # the first of each: the original direction, the client's
        if "src" in f and "sport" in f:
            out.add((f["src"], int(f["sport"])))
    return out


def second_chance(relay):
    """Packets of hasocks-vip.sh's rules on a relay host: passed on to the peers (flows this
    host does not own), peers' copies dropped (not owned here either), resets kept in."""
    p = subprocess.run(["ip", "netns", "exec", f"hsg-{relay}", "nft", "-j", "list", "table",
                        "ip", "hasocks_vip"], capture_output=True, text=True)
    out = {"passed_on": 0, "copies_dropped": 0, "resets_dropped": 0}
    if p.returncode != 0:
        return out
    for item in json.loads(p.stdout)["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        kinds = [next(iter(e)) for e in rule["expr"]]
        packets = next((e["counter"]["packets"] for e in rule["expr"] if "counter" in e), 0)
        if rule["chain"] == "output":
            out["resets_dropped"] += packets
        elif "dup" in kinds:
            out["passed_on"] += packets
        elif rule["chain"] == "second_chance":
            out["copies_dropped"] += packets
    return out


def sleep_until(t):
    time.sleep(max(0.0, t - time.monotonic()))


def shares(a, b):
    d = {r: (b[r] or 0) - (a[r] or 0) for r in a}
    n = sum(d.values()) or 1
    return {r: {"sessions": v, "share": round(v / n, 3)} for r, v in d.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "system"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    relays = ["relay1", "relay2", "relay3"]
    try:
        lab("up")
        status = json.loads(lab("status", "--json"))
        before = census()
        load_out = os.path.join(a.out, "bgp-load.jsonl")
        # Wall time minus monotonic: the hooks log wall times, the clients monotonic ones.
        off = time.time() - time.monotonic()
        t_start = time.monotonic()
        load = subprocess.Popen(in_client("load", str(LOAD_SECONDS), load_out))
        sleep_until(t_start + STEADY)
        c0 = {r: sessions_total(r) for r in relays}
        sleep_until(t_start + DRAIN_AT)
        c1 = {r: sessions_total(r) for r in relays}
        t_drain = time.monotonic()
        lab("drain", "relay1")
        sleep_until(t_start + ADD_AT)
        c2 = {r: sessions_total(r) for r in relays}
        t_add = time.monotonic()
        lab("add", "relay1")
        sleep_until(t_start + KILL_AT)
        c3 = {r: sessions_total(r) for r in relays}
        t_kill = time.monotonic()
        lab("kill", "relay2")
        # What relay2's host tracked: the connections its relay held when it died (closed by
        # the kernel then, kept by conntrack for 10 s or more) and SYNs it got before the
        # router dropped it. Taken twice, as entries of closed connections expire.
        time.sleep(0.5)
        on_killed = tracked("relay2")
        load.wait()
        on_killed |= tracked("relay2")
        c4 = {r: sessions_total(r) for r in relays}
        after = census()
        status_end = lab("status", check=False)
        chances = {r: second_chance(r) for r in relays}
        route_end = lab("route", check=False)
        ann1 = log_events("announce-relay1")
        ann2 = log_events("announce-relay2")
        hook = log_events("router-hook")
    finally:
        # The lab's logs (relays, servers, BIRD, hooks) outlive it, for a failure's reading.
        shutil.rmtree(os.path.join(a.out, "bgp-logs"), ignore_errors=True)
        if os.path.isdir(RUN):
            shutil.copytree(RUN, os.path.join(a.out, "bgp-logs"), ignore_dangling_symlinks=True,
                            ignore=shutil.ignore_patterns("*.sock", "*.ctl"), dirs_exist_ok=True)
        lab("down", check=False)

    mono = lambda wall: wall - off  # noqa: E731
    # The drain: the hook's "draining" and "withdrawn" after the drain, and the router's group.
    drained_at = next(((mono(t), " ".join(w[1:]).strip("()")) for t, w in ann1
                       if w[0] == "withdrawn" and mono(t) > t_drain), (None, None))
    drained, drained_why = drained_at
    signalled = next((mono(t) for t, w in ann1 if w[0] == "draining" and mono(t) > t_drain), None)
    out_of_group = next((mono(t) for t, w in hook if mono(t) > t_drain and not in_group(w, 1002)), None)
    back = next((mono(t) for t, w in hook if mono(t) > t_add and in_group(w, 1002)), None)
    killed_hook = next((mono(t) for t, w in ann2 if w[0] == "withdrawn" and mono(t) > t_kill), None)
    killed_router = next((mono(t) for t, w in hook if mono(t) > t_kill and not in_group(w, 1003)), None)

    sessions = [json.loads(l) for l in open(load_out)]
    failed = [s for s in sessions if not s["ok"]]
    in_window = lambda s, t0, t1: s["t1"] >= t0 and s["t0"] < t1  # noqa: E731
    # A session counts against the step in which it ended; one still open at the kill is the
    # kill's (it may have been on the killed relay).
    fail_drain = [s for s in failed if in_window(s, t_drain, t_add) and s["t1"] < t_kill]
    fail_add = [s for s in failed if in_window(s, t_add, t_kill) and s["t1"] < t_kill]
    fail_before = [s for s in failed if s["t1"] < t_drain]
    # The kill: sessions in flight at it, or started before the router dropped the relay.
    cutoff = (killed_router or t_kill + 1.0) + 0.2
    fail_kill = [s for s in failed if s["t1"] >= t_kill and s["t0"] < cutoff]
    fail_kill_other = [s for s in failed if s["t0"] >= cutoff]
    # Only sessions that were on the killed relay may fail: each failed session that got a
    # connection must be one relay2's host tracked.
    fail_kill_elsewhere = [s for s in fail_kill
                           if "sport" in s and (s["source"], s["sport"]) not in on_killed]
    fail_kill_unconnected = [s for s in fail_kill if "sport" not in s]
    last_fail = max((s["t0"] for s in fail_kill), default=None)
    first_ok = min((s["t1"] for s in sessions if s["ok"] and s["t0"] >= (killed_router or t_kill)),
                   default=None)
    long_in_drain = sum(1 for s in sessions if s["long"] and s["t0"] < t_drain < s["t1"])
    moved = sorted(k for k in before if before[k] != after.get(k))
    rnd = lambda x, t: None if x is None else round(x - t, 3)  # noqa: E731
    r = {
        "shared_address": status["shared_address"],
        "sessions": len(sessions),
        "ok": len(sessions) - len(failed),
        "long_sessions": sum(1 for s in sessions if s["long"]),
        "sources": len({s["source"] for s in sessions}),
        "steady_shares": shares(c0, c1),
        "drain_shares": shares(c1, c2),
        "add_shares": shares(c2, c3),
        "kill_shares": shares(c3, c4),
        "failed_before_drain": len(fail_before),
        "drain_signalled_s": rnd(signalled, t_drain),
        "drain_withdrawn_s": rnd(drained, t_drain),
        "drain_withdrawn_why": drained_why,
        "drain_out_of_router_group_s": rnd(out_of_group, t_drain),
        "drain_failed": len(fail_drain),
        "drain_long_in_flight": long_in_drain,
        "add_in_router_group_s": rnd(back, t_add),
        "add_failed": len(fail_add),
        "kill_hook_withdrawn_s": rnd(killed_hook, t_kill),
        "kill_router_withdrawn_s": rnd(killed_router, t_kill),
        "kill_last_failed_session_started_s": rnd(last_fail, t_kill),
        "kill_first_success_after_withdrawal_s": rnd(first_ok, t_kill),
        "kill_failed": len(fail_kill),
        "kill_failed_long": sum(1 for s in fail_kill if s["long"]),
        "kill_failed_kinds": kinds(fail_kill),
        "failed_after_kill_withdrawal": len(fail_kill_other),
        "kill_failed_on_killed_relay": len(fail_kill) - len(fail_kill_elsewhere)
        - len(fail_kill_unconnected),
        "kill_failed_elsewhere": len(fail_kill_elsewhere),
        "kill_failed_unconnected": len(fail_kill_unconnected),
        "second_chance": chances,
        "census_size": len(before),
        "census_moved": moved,
        "census_failed": sorted(k for k, v in after.items() if v.startswith("failed")),
        "census_servers": sorted(set(before.values())),
        "examples_failed": (fail_drain + fail_add + fail_kill_other + fail_kill_elsewhere)[:5],
        "steps_monotonic": {"drain": t_drain, "add": t_add, "kill": t_kill},
        "status_at_end": status_end,
        "route_at_end": route_end,
    }
    problems = []
    if any(v["sessions"] == 0 for v in r["steady_shares"].values()):
        problems.append(f"steady state: a relay carried no session {r['steady_shares']}")
    if r["sources"] < 30:
        problems.append(f"only {r['sources']} client addresses")
    if r["failed_before_drain"]:
        problems.append(f"{r['failed_before_drain']} sessions failed in the steady state")
    if r["drain_failed"]:
        problems.append(f"drain: {r['drain_failed']} failed sessions")
    if r["drain_withdrawn_s"] is None:
        problems.append("drain: relay1's route was not withdrawn")
    if r["add_failed"]:
        problems.append(f"add: {r['add_failed']} failed sessions")
    if r["add_in_router_group_s"] is None:
        problems.append("add: relay1 did not come back into the router's group")
    if r["kill_router_withdrawn_s"] is None or r["kill_router_withdrawn_s"] >= WITHDRAW_GOAL:
        problems.append(f"kill: withdrawn after {r['kill_router_withdrawn_s']} s (goal < {WITHDRAW_GOAL})")
    if r["kill_failed_elsewhere"]:
        problems.append(f"kill: {r['kill_failed_elsewhere']} failed sessions were not on relay2")
    if r["failed_after_kill_withdrawal"]:
        problems.append(f"kill: {r['failed_after_kill_withdrawal']} sessions failed after the withdrawal")
    if moved or r["census_failed"] or r["census_size"] < 30:
        problems.append(f"census: moved {moved}, failed {r['census_failed']}, size {r['census_size']}")
    r["problems"] = problems
    with open(os.path.join(a.out, "bgp_ecmp.json"), "w") as f:
        json.dump(r, f, indent=1)
    md = markdown(r)
    with open(os.path.join(a.out, "bgp_ecmp.md"), "w") as f:
        f.write(md)
    print(md)
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("bgp_ecmp: every point holds")
    return 0


def kinds(sessions):
    out = {}
    for s in sessions:
        out[s["error"]] = out.get(s["error"], 0) + 1
    return dict(sorted(out.items()))


def markdown(r):
    def sh(key):
        return ", ".join(f"{k} {v['share']:.0%} ({v['sessions']})" for k, v in r[key].items())

    rows = [
        ("sessions (ok), long streams, client addresses",
         f"{r['sessions']} ({r['ok']}), {r['long_sessions']}, {r['sources']}"),
        ("1. steady state: share of new sessions", sh("steady_shares")),
        ("2. drain relay1: draining signalled / withdrawn (why) / out of the router's group",
         f"{r['drain_signalled_s']} s / {r['drain_withdrawn_s']} s ({r['drain_withdrawn_why']}) / "
         f"{r['drain_out_of_router_group_s']} s"),
        ("2. drain: failed sessions (long streams in flight at the drain)",
         f"{r['drain_failed']} ({r['drain_long_in_flight']})"),
        ("2. drain: shares while draining", sh("drain_shares")),
        ("3. add relay1 back: in the router's group after / failed sessions",
         f"{r['add_in_router_group_s']} s / {r['add_failed']}"),
        ("3. add: shares after", sh("add_shares")),
        ("4. kill -9 relay2: hook withdrew / router dropped it",
         f"{r['kill_hook_withdrawn_s']} s / {r['kill_router_withdrawn_s']} s"),
        ("4. kill: failed sessions (long) and kinds",
         f"{r['kill_failed']} ({r['kill_failed_long']}) {r['kill_failed_kinds']}"),
        ("4. kill: last failed new session started / first success after the withdrawal",
         f"{r['kill_last_failed_session_started_s']} s / {r['kill_first_success_after_withdrawal_s']} s"),
        ("4. kill: failed after the withdrawal", str(r["failed_after_kill_withdrawal"])),
        ("4. kill: failed sessions tracked by relay2's host / by no relay (never connected) / "
         "elsewhere", f"{r['kill_failed_on_killed_relay']} / {r['kill_failed_unconnected']} / "
         f"{r['kill_failed_elsewhere']}"),
        ("second chance, packets: passed on to peers / peers' copies dropped / resets kept in",
         ", ".join(f"{k} {v['passed_on']}/{v['copies_dropped']}/{v['resets_dropped']}"
                   for k, v in r["second_chance"].items())),
        ("5. census: addresses that changed server (of N)",
         f"{len(r['census_moved'])} (of {r['census_size']}), servers {r['census_servers']}"),
    ]
    out = "| | |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    if r["problems"]:
        out += "\nProblems: " + "; ".join(r["problems"]) + "\n"
    return out


if __name__ == "__main__":
    sys.exit(main())
