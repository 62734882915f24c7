# bench/lib.sh - shared by bench/run-server.sh, bench/run-relay.sh and bench/udp/run.sh.
# Source it; it does nothing on its own but set REPO, cd there, and set HZ.
#   . "$(dirname "$0")/lib.sh"        (or ../lib.sh from bench/udp)
# Every function writes diagnostics to stderr and results to stdout.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
HZ=$(getconf CLK_TCK)
PY=/usr/bin/python3
PIDS=""

log() { printf '%s\n' "$*" >&2; }

# The load settings given in the environment, read before any script sets its defaults, so
# that the recorded command line reproduces the run.
GIVEN_ENV=""
for _v in ROUNDS ROUNDS_AB DURATION STREAMS CONCURRENCY IDLE PAYLOAD WINDOW BATCH FLOOD_SECS CHAIN_CPU; do
    [ -n "${!_v:-}" ] && GIVEN_ENV="$GIVEN_ENV $_v=${!_v}"
done
unset _v

# Defaults of the TCP loads (run-server.sh, run-relay.sh); each can be set in the environment.
tcp_load_defaults() {
    DURATION=${DURATION:-10}
    STREAMS=${STREAMS:-8}
    CONCURRENCY=${CONCURRENCY:-50}
    IDLE=${IDLE:-10000}
    PAYLOAD=${PAYLOAD:-64}
}

# record_command SCRIPT ARGS...: sets COMMAND, the command line as it can be typed again,
# with the environment that chooses the binaries and the load settings that were given.
record_command() {
    local v
    COMMAND="$*"
    [ -n "$GIVEN_ENV" ] && COMMAND="${GIVEN_ENV# } $COMMAND"
    for v in HASOCKS_BIN BASE_BIN CARGO_TARGET_DIR; do
        [ -n "${!v:-}" ] && COMMAND="$v=${!v} $COMMAND"
    done
}

# Sets HASOCKS_BIN: as given, or `cargo build --release -p hasocks` into
# ${CARGO_TARGET_DIR:-target}.
need_hasocks() {
    if [ -z "${HASOCKS_BIN:-}" ]; then
        log "building hasocks (release)..."
        cargo build --release -p hasocks >&2 || { log "cargo build failed"; exit 1; }
        HASOCKS_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/hasocks"
    fi
    [ -x "$HASOCKS_BIN" ] || { log "no hasocks binary at $HASOCKS_BIN"; exit 1; }
}

# fit_idle WANT_NOFILE WHY: raises `ulimit -n` to WANT (else to the hard limit) and lowers
# $IDLE to what fits: each idle session costs 2 descriptors, 1000 are kept spare. Sets
# NOFILE and IDLE_NOTE (empty when nothing was lowered).
fit_idle() {
    ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
    NOFILE=$(ulimit -n)
    local fit=$(((NOFILE - 1000) / 2))
    IDLE_NOTE=""
    if [ "$IDLE" -gt "$fit" ]; then
        IDLE_NOTE="idle sessions reduced from $IDLE to $fit: RLIMIT_NOFILE is $NOFILE here (ulimit -n $1 was refused)$2"
        IDLE=$fit
    fi
}

# bench_tmp PREFIX: makes $TMP; on exit, kills (by PID) every process listed in $PIDS and
# removes $TMP unless KEEP_TMP is set.
bench_tmp() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$TMP" # Dante's unprivileged user reads its config from here
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
track() { PIDS="$PIDS $*"; }
cleanup() {
    local p
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    remove_cgroups
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}

# A free TCP port on 127.0.0.1 (retried: loopback ephemeral ports can run out for a moment).
free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null) &&
            { echo "$p"; return 0; }
        sleep 0.1
    done
    echo $((20000 + RANDOM % 10000))
}

# wait_port PORT [PID]: until 127.0.0.1:PORT accepts a TCP connection (deadline ~10 s).
wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && return 1
        sleep 0.1
    done
    return 1
}

# wait_socks HOST:PORT PID [TENTHS]: until a SOCKS session through HOST:PORT works end to end
# (`hasocks check`), or PID exits; deadline TENTHS/10 s (default 10 s).
wait_socks() {
    local i
    for i in $(seq 1 "${3:-100}"); do
        "$HASOCKS_BIN" check -q -s "$1" -t 1000 >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# sockd_conf ADDR PORT LOGFILE [COMMANDS]: a minimal sockd.conf (no authentication, pass
# rules for 127/8 clients, no session logging) on stdout; COMMANDS limits the socks rule.
sockd_conf() {
    cat <<CONF
# written by bench/lib.sh
logoutput: $3
internal: $1 port = $2
external: $1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
${4:+    command: $4
}}
CONF
}

# Waits (up to 70 s) until few TIME_WAIT sockets are left: Dante binds its
# external side to port 0 before connecting, which fails while earlier
# sessions' TIME_WAIT entries hold the ephemeral ports.
drain_time_wait() {
    local i n
    command -v ss >/dev/null || return 0
    for i in $(seq 1 140); do
        n=$(ss -Htan state time-wait 2>/dev/null | wc -l)
        [ "$n" -lt 1000 ] && return 0
        [ "$i" = 1 ] && log "waiting for $n TIME_WAIT sockets to expire..."
        sleep 0.5
    done
}

# Value of a field in a one-line JSON object on stdin.
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -n1; }

# tree_pids PID...: the PIDs and all their descendants (one `ps` call).
tree_pids() {
    ps -e -o pid=,ppid= | awk -v roots="$*" '
        { kids[$2] = kids[$2] " " $1 }
        END {
            n = split(roots, q, " ")
            for (i = 1; i <= n; i++) {
                p = q[i]; printf "%s ", p
                m = split(kids[p], k, " ")
                for (j = 1; j <= m; j++) q[++n] = k[j]
            }
        }'
}

# mem_kb FIELD PID...: FIELD (VmRSS from status, or Pss from smaps_rollup) summed over the
# listed processes, in kB. PSS does not count shared pages once per process.
mem_kb() {
    local field=$1 p file total=0 v
    shift
    for p in "$@"; do
        if [ "$field" = Pss ]; then file=/proc/$p/smaps_rollup; else file=/proc/$p/status; fi
        v=$(awk -v f="$field:" '$1==f {print $2; exit}' "$file" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# cpu_snap PID...: one line per process, "PID:STARTTIME TICKS CHILD_TICKS" from
# /proc/PID/stat: TICKS = utime + stime (all threads), CHILD_TICKS = cutime + cstime (the
# children it has waited for). STARTTIME tells a reused PID from the old process.
cpu_snap() {
    local p
    for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; echo; done |
        sed -n 's/^\([0-9]*\) (.*) /\1 /p' | awk '{print $1 ":" $21, $13 + $14, $15 + $16}'
}

# cpu_seconds SNAP_BEFORE SNAP_AFTER (files from cpu_snap): CPU seconds a process tree used in
# between. Processes in both reads: the difference of their own time, plus the growth of their
# children's time (children that exited and were waited for in between, e.g. Dante's
# workers). Processes born in between: all their time. Processes in the first read only
# (exited): their time before the first read is taken off again, as the parent's children's
# time counts their whole life. Exact as long as exited processes were waited for by a process
# of the tree alive at both reads (Dante's mother process is).
cpu_seconds() {
    awk -v hz="$HZ" 'NR == FNR {t0[$1] = $2; c0[$1] = $3; next}
        {seen[$1] = 1; if ($1 in t0) s += $2 - t0[$1] + $3 - c0[$1]; else s += $2 + $3}
        END {for (k in t0) if (!(k in seen)) s -= t0[k]; printf "%.2f", s / hz}' "$1" "$2"
}

# How cpu_seconds counts, for the result files.
CPU_NOTE="utime+stime from /proc/PID/stat of every process under test (all threads), read just before and just after the run: the difference for processes in both reads, the whole time of processes born in between, and children that exited in between through their parent's cutime+cstime (Dante's workers; children not waited for by a surviving process would be missed)"

# run_cpu FILE PID -- CMD...: runs CMD (its stdout to stdout) and writes to FILE the CPU
# seconds used meanwhile by PID's process tree (see cpu_seconds).
run_cpu() {
    local file=$1 pid=$2 rc
    shift 3
    # shellcheck disable=SC2046
    cpu_snap $(tree_pids "$pid") >"$file.0"
    "$@"
    rc=$?
    # shellcheck disable=SC2046
    cpu_snap $(tree_pids "$pid") >"$file.1"
    cpu_seconds "$file.0" "$file.1" >"$file"
    return $rc
}

# stat_snap: "busy total" clock ticks of all CPUs together, from /proc/stat (idle and iowait
# count as not busy).
stat_snap() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }

# busy_pct "B0 T0" "B1 T1": percentage of all CPU time that was busy between two snapshots.
busy_pct() {
    echo "$1 $2" | awk '{ if ($4 > $2) printf "%.0f", 100 * ($3 - $1) / ($4 - $2); else print "n/a" }'
}

# tcp_outsegs: TCP segments this machine has sent so far (Tcp OutSegs of /proc/net/snmp).
tcp_outsegs() {
    awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "OutSegs") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# per_session_us SECONDS SESSIONS: CPU microseconds per session, or n/a.
per_session_us() {
    case "$1$2" in *n/a* | "") echo n/a; return ;; esac
    awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f\n", c * 1e6 / n; else print "n/a" }'
}

# cpu_per_gb SECONDS BYTES: server CPU-seconds per GB (1e9 bytes) moved, or n/a.
cpu_per_gb() {
    case "$1$2" in *n/a* | "") echo n/a; return ;; esac
    awk -v c="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", c / (b / 1e9); else print "n/a" }'
}

# hold_idle NAME PID TENTHS BENCH_ARGS...: opens $IDLE sessions with `hasocks bench --mode
# idle` (waiting up to TENTHS/10 s for them), reads the memory of PID's process tree before
# and with them open, then closes them. Sets IDLE_OPEN, IDLE_PROCS, IDLE_RSS0/1, IDLE_PSS0/1.
hold_idle() {
    local name=$1 pid=$2 tenths=$3 bpid i
    shift 3
    # shellcheck disable=SC2046
    IDLE_RSS0=$(mem_kb VmRSS $(tree_pids "$pid")); IDLE_PSS0=$(mem_kb Pss $(tree_pids "$pid"))
    "$HASOCKS_BIN" bench "$@" --mode idle --sessions "$IDLE" --concurrency 200 --payload "$PAYLOAD" --json \
        >"$TMP/$name.idle" 2>>"$TMP/$name.err" &
    bpid=$!
    track "$bpid"
    IDLE_OPEN=""
    for i in $(seq 1 "$tenths"); do
        IDLE_OPEN=$(sed -n 's/^ready //p' "$TMP/$name.idle")
        [ -n "$IDLE_OPEN" ] && break
        kill -0 "$bpid" 2>/dev/null || break
        sleep 0.1
    done
    local tree
    tree=$(tree_pids "$pid")
    # shellcheck disable=SC2086
    IDLE_RSS1=$(mem_kb VmRSS $tree); IDLE_PSS1=$(mem_kb Pss $tree)
    IDLE_PROCS=$(echo "$tree" | wc -w)
    kill -TERM "$bpid" 2>/dev/null
    wait "$bpid" 2>/dev/null
    IDLE_OPEN=${IDLE_OPEN:-0}
}

# per_session KB0 KB1 N: (KB1-KB0)/N with 2 decimals.
per_session() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN{ if (n > 0) printf "%.2f", (b-a)/n; else print "n/a" }'; }

# ratio A B: A/B with 2 decimals, n/a when either is missing or B is 0.
ratio() {
    case "$1$2" in *n/a* | "") echo n/a; return ;; esac
    awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0==0) print "n/a"; else printf "%.2f", a/b }'
}

# section_head TITLE WHAT: the first lines of a result section: title, date, machine (WHAT
# shares its CPUs with the client and the target), and the command that made it.
section_head() {
    echo "## $1"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(machine); client, target and $2 share these CPUs"
    echo "- command: \`$COMMAND\`"
}

# dante_version: "Dante v1.4.2" from $DANTED.
dante_version() { "$DANTED" -v 2>&1 | head -n1 | sed 's/\. *Copyright.*//'; }

# One line describing this machine.
machine() {
    local cpu
    cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)
    echo "$(nproc) CPUs ($cpu), Linux $(uname -r)"
}

# publish FILE: prints a section written to $TMP, stores it as FILE and rebuilds
# bench/RESULTS.md from bench/results/ (bench/merge.sh).
publish() {
    cat "$TMP/results.md"
    mkdir -p "$(dirname "$1")"
    cp "$TMP/results.md" "$1"
    log "written to $1"
    "$REPO/bench/merge.sh" && log "merged into $REPO/bench/RESULTS.md"
}

# start_server NAME CMD...: starts a server listening on 127.0.0.1 port $P_NAME, its output in
# $TMP/NAME.out; sets PID_NAME and STATUS_NAME (ok, or why not).
start_server() {
    local name=$1 port
    shift
    eval "port=\$P_$name"
    "$@" >"$TMP/$name.out" 2>&1 &
    eval "PID_$name=$!"
    track "$!"
    if wait_port "$port" "$!"; then
        eval "STATUS_$name=ok"
    else
        eval "STATUS_$name=\"did not start: $(tail -n 3 "$TMP/$name.out" | tr '\n' ' ')\""
    fi
}

# cpu_capped CMD...: runs CMD (exec, so its PID is the caller's $!) inside a CPU cgroup
# capped at $CHAIN_CPU CPUs (cgroup v1 cpu controller, or v2), children included, so a
# server can be measured at a fixed CPU budget: then sessions/s is its own capacity, not
# what the load generator and the other processes on this 2-CPU machine leave it. Without
# CHAIN_CPU it just runs CMD.
cpu_capped() {
    if [ -z "${CHAIN_CPU:-}" ]; then exec "$@"; fi
    local cg quota
    quota=$(awk -v c="$CHAIN_CPU" 'BEGIN{printf "%d", c*100000}')
    if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then
        cg=/sys/fs/cgroup/cpu/hasocks-bench-$$-$RANDOM
        mkdir "$cg" && echo 100000 >"$cg/cpu.cfs_period_us" && echo "$quota" >"$cg/cpu.cfs_quota_us" ||
            { echo "cpu_capped: cannot make $cg" >&2; exit 1; }
    else
        cg=/sys/fs/cgroup/hasocks-bench-$$-$RANDOM
        mkdir "$cg" && echo "$quota 100000" >"$cg/cpu.max" ||
            { echo "cpu_capped: cannot make $cg (no cgroup cpu controller here)" >&2; exit 1; }
    fi
    echo "$cg" >>"$TMP/cgroups"
    echo $BASHPID >"$cg/cgroup.procs" || exit 1
    exec "$@"
}
remove_cgroups() {
    local cg
    [ -f "$TMP/cgroups" ] || return 0
    while read -r cg; do rmdir "$cg" 2>/dev/null; done <"$TMP/cgroups"
}

# measure_each NAME...: runs the script's `measure NAME` for each server that started
# (STATUS_NAME ok), Dante's after a TIME_WAIT drain (it binds its outgoing side before
# connecting).
measure_each() {
    local n st
    for n in "$@"; do
        eval "st=\$STATUS_$n"
        log "[$n] $st"
        [ "$st" = ok ] || continue
        [ "$n" = dante ] && drain_time_wait
        measure "$n"
    done
}
