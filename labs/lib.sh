# Helpers shared by the labs (sourced; the lab sets $run, its state directory, and $repo,
# the repository's root).

die() { echo "lab: $*" >&2; exit 1; }

# The hasocks binary: $HASOCKS_BIN, else hasocks on PATH, else this repo's release build.
hasocks_bin() {
  if [ -n "${HASOCKS_BIN:-}" ]; then readlink -f "$HASOCKS_BIN"
  elif command -v hasocks >/dev/null; then command -v hasocks
  elif [ -x "$repo/target/release/hasocks" ]; then readlink -f "$repo/target/release/hasocks"
  else die "no hasocks binary: build it (cargo build --release) or set HASOCKS_BIN"
  fi
}

# need TOOL...: root, and each tool installed.
need() {
  [ "$(id -u)" = 0 ] || die "run as root"
  local t
  for t in "$@"; do command -v "$t" >/dev/null || die "$t is not installed"; done
}

# start NAME NS CMD...: runs CMD in namespace NS in the background; pid in $run/NAME.pid.
start() {
  local name=$1 ns=$2
  shift 2
  ip netns exec "$ns" "$@" >"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

# stop NAME [SIGNAL]: signals the process this lab started as NAME.
stop() {
  local f="$run/$1.pid"
  [ -f "$f" ] || return 0
  kill "-${2:-TERM}" "$(cat "$f")" 2>/dev/null || true
  rm -f "$f"
}

alive() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

# wait_for WHAT CONDITION SECONDS
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if eval "$2"; then return 0; fi
    sleep 0.1
  done
  die "timed out waiting for $1 (logs: $run/*.log)"
}

# stop_all PREFIX: TERM (then KILL after 5 s) every process this lab started, remove the
# namespaces named PREFIX* and the state directory.
stop_all() {
  local pids=() f p any ns
  for f in "$run"/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      any=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
      [ "$any" = 0 ] && break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  for ns in $(ip netns list 2>/dev/null | awk -v p="$1" 'index($1, p) == 1 {print $1}'); do
    ip netns del "$ns"
  done
  rm -rf "$run"
}
