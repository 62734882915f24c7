#!/usr/bin/env python3
"""System test: a keepalived pair of hasocks relays loses its master under load, three ways.

For each fault (kill -9 the master relay; stop the master's keepalived; take the master's
link down; and the master relay losing its servers while its partner keeps them) it builds the lab (labs/keepalived/lab.sh), takes a census of which server 30
client addresses egress through, runs 50 clients for 30 s (5 in long sessions) and a UDP
association, injects the fault at 10 s, brings the old master back at 20 s, and measures:
time from the fault to the first successful new session, which sessions failed and why, the
census after the failover (0 moved), that the old master stays backup (nopreempt) with no
failed new session at its return, and what the UDP association did.

Run as root: python3 tests/system/failover.py [--out DIR] [--modes kill,keepalived,link]
Exit status 0 when every point holds; the report goes to DIR/failover.md and .json.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "labs", "keepalived", "lab.sh")
CLIENT = os.path.join(ROOT, "tests", "system", "client.py")
LOAD_SECONDS, FAULT_AT, RESTORE_AT = 30.0, 10.0, 20.0
FIRST_SUCCESS_GOAL = 3.0

FAULTS = {
    "kill": "kill -9 the master relay",
    "keepalived": "stop the master's keepalived",
    "link": "take the master's link down",
    "servers": "the master's servers refuse it (its /ready fails)",
}
RUN = "/run/hasocks-lab"


def pid_of(name):
    with open(os.path.join(RUN, f"{name}.pid")) as f:
        return int(f.read())


def inject(mode):
    """Applies the fault to relay host 1; the time just before the call that applies it (a
    signal is sent from here; an nft or netlink change takes effect somewhere inside its call,
    so a session that fails during the call is the fault's, not one from before it)."""
    if mode in ("kill", "keepalived"):
        name, sig = ("relay1", signal.SIGKILL) if mode == "kill" else ("keepalived1", signal.SIGTERM)
        pid = pid_of(name)
        t = time.monotonic()
        os.kill(pid, sig)
        os.unlink(os.path.join(RUN, f"{name}.pid"))
        return t
    if mode == "servers":
        # Relay 1 alone is refused by the servers (as by servers that stopped): its checks
        # fail, then its /ready, then keepalived gives the address up.
        rules = ("table inet lab_cut {\n chain output {\n"
                 "  type filter hook output priority 0;\n"
                 "  ip daddr { 10.77.0.11, 10.77.0.12 } tcp dport 1080 reject with tcp reset\n }\n}\n")
        t = time.monotonic()
        subprocess.run(["ip", "netns", "exec", "hsl-relay1", "nft", "-f", "-"], input=rules,
                       text=True, check=True)
        return t
    t = time.monotonic()
    subprocess.run(["ip", "-n", "hsl-sw", "link", "set", "v-relay1", "down"], check=True)
    return t


def undo(mode):
    if mode == "servers":
        subprocess.run(["ip", "netns", "exec", "hsl-relay1", "nft", "delete", "table", "inet",
                        "lab_cut"], check=True)
    lab("restore", "1")


def lab(*args, check=True):
    p = subprocess.run(["bash", LAB, *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"lab.sh {' '.join(args)} failed:\n{p.stdout}{p.stderr}")
    return p.stdout.strip()


def in_client(*args):
    return ["ip", "netns", "exec", "hsl-client", "python3", CLIENT, *args]


def census():
    out = subprocess.run(in_client("census"), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def wait_master(want, deadline):
    """Polls who holds the address until it is `want`; the time it was first seen."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if lab("master", check=False) == str(want):
            return time.monotonic()
        time.sleep(0.02)
    return None


def run_mode(mode, workdir):
    title = FAULTS[mode]
    print(f"== {mode}: {title}", flush=True)
    lab("up")
    master = lab("master")
    assert master == "1", f"relay 1 should hold the address first, not {master!r}"
    before = census()
    load_out = os.path.join(workdir, f"{mode}-load.jsonl")
    udp_out = os.path.join(workdir, f"{mode}-udp.json")
    started = time.monotonic()
    load = subprocess.Popen(in_client("load", str(LOAD_SECONDS), load_out))
    udp = subprocess.Popen(in_client("udp", str(LOAD_SECONDS), udp_out))
    time.sleep(max(0.0, started + FAULT_AT - time.monotonic()))
    t_fault = inject(mode)
    t_moved = wait_master(2, 10)
    time.sleep(max(0.0, started + RESTORE_AT - time.monotonic()))
    t_back = time.monotonic()
    undo(mode)
    # Back and ready: relay 1's keepalived reports BACKUP, and relay 2 keeps the address.
    time.sleep(4)
    holder_after_return = lab("master", check=False)
    load.wait()
    udp.wait()
    after = census()
    status = lab("status", check=False)
    lab("down")

    sessions = [json.loads(l) for l in open(load_out)]
    with open(udp_out) as f:
        u = json.load(f)
    return analyse(mode, title, sessions, u, before, after, t_fault, t_moved, t_back,
                   holder_after_return, status)


def analyse(mode, title, sessions, u, before, after, t_fault, t_moved, t_back, holder, status):
    ok_new = [s for s in sessions if s["ok"] and s["t0"] >= t_fault]
    first_ok = min((s["t1"] for s in ok_new), default=None)
    failed = [s for s in sessions if not s["ok"]]
    in_flight = [s for s in failed if s["t0"] < t_fault <= s["t1"]]
    # New connections that reached the old master before the address moved.
    switch_end = (t_moved or t_fault) + 0.2
    at_dead = [s for s in failed if t_fault <= s["t0"] < switch_end and s not in in_flight]
    other = [s for s in failed if s not in in_flight and s not in at_dead]
    at_return = [s for s in failed if s["t0"] >= t_back]
    moved = sorted(k for k in before if before[k] != after.get(k))
    # UDP: answered before the fault, and for how long after it.
    dg = u["datagrams"]
    answered_before = sum(1 for d in dg if d["t"] < t_fault and d["answered"])
    sent_before = sum(1 for d in dg if d["t"] < t_fault)
    after_fault = [d for d in dg if d["t"] >= t_fault]
    last_answer = max((d["t"] for d in after_fault if d["answered"]), default=None)
    ctl = u["control"]
    r = {
        "mode": mode,
        "fault": title,
        "sessions": len(sessions),
        "ok": len(sessions) - len(failed),
        "address_moved_s": None if t_moved is None else round(t_moved - t_fault, 3),
        "first_success_s": None if first_ok is None else round(first_ok - t_fault, 3),
        "failed": len(failed),
        "failed_in_flight": len(in_flight),
        "failed_in_flight_long": sum(1 for s in in_flight if s["long"]),
        "failed_new_at_dead_master": len(at_dead),
        "failed_other": len(other),
        "failed_after_return": len(at_return),
        "kinds_in_flight": kinds(in_flight),
        "kinds_at_dead_master": kinds(at_dead),
        "census_moved": moved,
        "census_size": len(before),
        "census_failed": sorted(k for k, v in after.items() if v.startswith("failed")),
        "holder_after_return": holder,
        "udp_answered_before_fault": f"{answered_before}/{sent_before}",
        "udp_answered_after_fault": sum(1 for d in after_fault if d["answered"]),
        "udp_sent_after_fault": len(after_fault),
        "udp_answers_until_s": None if last_answer is None else round(last_answer - t_fault, 2),
        "udp_control_ended_s": None if ctl["ended"] is None else round(ctl["ended"] - t_fault, 2),
        "udp_control_end": ctl["how"] or "open to the end",
        "udp_server": ctl["server"],
        "examples_other": other[:3],
        "status_at_end": status,
    }
    print(json.dumps({k: v for k, v in r.items() if k != "status_at_end"}, indent=1), flush=True)
    return r


def kinds(sessions):
    out = {}
    for s in sessions:
        out[s["error"]] = out.get(s["error"], 0) + 1
    return dict(sorted(out.items()))


def problems(r):
    p = []
    if r["address_moved_s"] is None:
        p.append("the address did not move to relay 2")
    if r["mode"] == "servers":
        # Not one of the three faults with a time goal: detection takes a failed server
        # check, then a failed track script. Shown: the address leaves a relay that is up
        # but cannot serve, and sessions resume.
        if r["first_success_s"] is None:
            p.append("no session succeeded after the master lost its servers")
    elif r["first_success_s"] is None or r["first_success_s"] >= FIRST_SUCCESS_GOAL:
        p.append(f"first success after {r['first_success_s']} s (goal < {FIRST_SUCCESS_GOAL})")
    if r["failed_other"]:
        p.append(f"{r['failed_other']} failed sessions neither in flight nor at the dead master")
    if r["failed_after_return"]:
        p.append(f"{r['failed_after_return']} failed new sessions after the old master returned")
    if r["census_moved"] or r["census_failed"]:
        p.append(f"census: moved {r['census_moved']}, failed {r['census_failed']}")
    if r["census_size"] != 30:
        p.append(f"census of {r['census_size']} addresses")
    if r["holder_after_return"] != "2":
        p.append(f"after the return the address is on relay {r['holder_after_return']!r} (nopreempt: 2)")
    if r["failed_in_flight_long"] == 0 and r["mode"] != "servers":
        p.append("no long session was in flight at the fault: the test did not exercise one")
    return p


def markdown(results):
    rows = [
        ("time from the fault to the address on relay 2", "address_moved_s", " s"),
        ("time from the fault to the first successful new session", "first_success_s", " s"),
        ("sessions (ok)", None, ""),
        ("failed: in flight on the dead master (of which long)", None, ""),
        ("failed: new, reached the dead master before the address moved", "failed_new_at_dead_master", ""),
        ("failed: any other", "failed_other", ""),
        ("failed new sessions after the old master came back", "failed_after_return", ""),
        ("census: addresses that changed egress server (of 30)", None, ""),
        ("address holder after the old master came back", "holder_after_return", ""),
        ("UDP datagrams answered after the fault", None, ""),
        ("UDP answers went on until", "udp_answers_until_s", " s after the fault"),
        ("UDP control connection", None, ""),
    ]
    head = "| | " + " | ".join(r["fault"] for r in results) + " |\n|---|" + "---|" * len(results) + "\n"
    out = head
    for label, key, unit in rows:
        cells = []
        for r in results:
            if key:
                v = r[key]
                cells.append("-" if v is None else f"{v}{unit}")
            elif label.startswith("sessions"):
                cells.append(f"{r['sessions']} ({r['ok']})")
            elif label.startswith("failed: in flight"):
                cells.append(f"{r['failed_in_flight']} ({r['failed_in_flight_long']})")
            elif label.startswith("census"):
                cells.append(str(len(r["census_moved"])))
            elif label.startswith("UDP datagrams"):
                cells.append(f"{r['udp_answered_after_fault']} of {r['udp_sent_after_fault']}")
            else:
                end = r["udp_control_ended_s"]
                cells.append(r["udp_control_end"] + ("" if end is None else f" at {end} s"))
        out += f"| {label} | " + " | ".join(cells) + " |\n"
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "system"))
    ap.add_argument("--modes", default="kill,keepalived,link,servers")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    results, failures = [], []
    for mode in a.modes.split(","):
        try:
            r = run_mode(mode, a.out)
        finally:
            lab("down", check=False)
        results.append(r)
        failures += [f"{mode}: {p}" for p in problems(r)]
    with open(os.path.join(a.out, "failover.json"), "w") as f:
        json.dump(results, f, indent=1)
    md = markdown(results)
    with open(os.path.join(a.out, "failover.md"), "w") as f:
        f.write(md)
    print(md)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("failover: every point holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
