#!/usr/bin/env bash
# The cost of going through Caddy: one hephd, with Caddy (TLS from its
# internal CA) in front of it, and `caddy_cost` measuring push → ack and
# propagation through Caddy over TLS and directly, side by side, in one
# run. See benches/README.md, "Behind Caddy".
#
#   benches/hub/caddy.sh                 # 2,000 timed pushes per path
#   SAMPLES=200 benches/hub/caddy.sh     # smoke run
#
# Environment:
#   SAMPLES=2000   timed pushes per path (one in flight)
#   ROUNDS=10      blocks the paths take turns in
#   OUT=DIR        also copy caddy.jsonl, machine.txt and the logs to DIR
#   KEEP=1         keep the temp dir
#
# Needs: cargo, python3, caddy (Debian's package). Only 127.0.0.1 is used;
# Caddy gets no admin endpoint and binds neither 80 nor 443. Both servers
# are stopped at the end.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SAMPLES=${SAMPLES:-2000}
ROUNDS=${ROUNDS:-10}

for tool in cargo python3 caddy; do
  command -v "$tool" >/dev/null || { echo "caddy.sh: $tool is needed" >&2; exit 1; }
done
say() { printf '\n=== %s\n' "$*" >&2; }

say "building (cargo build --release -p heph-hub -p heph-benches)"
(cd "$ROOT" && cargo build --release -p heph-hub -p heph-benches)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heph-caddy-bench.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${KEEP:-0} == 1 ]]; then echo "caddy.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK/bin"
# Frozen copies: others may rebuild target/ while this runs.
cp "$TARGET_DIR/release/hephd" "$TARGET_DIR/release/caddy_cost" "$WORK/bin/"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HUB_PORT=$(free_port)
CADDY_PORT=$(free_port)

say "hephd on 127.0.0.1:$HUB_PORT"
env -u HEPH_DB "$WORK/bin/hephd" --mode server --http-addr "127.0.0.1:$HUB_PORT" --db "$WORK/hub.db" \
  --trusted-proxy 127.0.0.1 2>"$WORK/hephd.log" &
PIDS+=($!)

# The README's Caddyfile, with Caddy's internal CA instead of ACME and
# everything under $WORK.
cat >"$WORK/Caddyfile" <<EOF
{
	admin off
	auto_https disable_redirects
	skip_install_trust
	default_sni 127.0.0.1
	storage file_system {
		root $WORK/caddy
	}
}

https://127.0.0.1:$CADDY_PORT {
	bind 127.0.0.1
	tls internal
	reverse_proxy 127.0.0.1:$HUB_PORT
}
EOF
say "caddy on 127.0.0.1:$CADDY_PORT ($(caddy version | cut -d' ' -f1))"
HOME=$WORK XDG_DATA_HOME=$WORK/xdg-data XDG_CONFIG_HOME=$WORK/xdg-config \
  caddy run --adapter caddyfile --config "$WORK/Caddyfile" 2>"$WORK/caddy.log" &
PIDS+=($!)

ROOT_CA=$WORK/caddy/pki/authorities/local/root.crt
for _ in $(seq 1 200); do
  if [[ -s $ROOT_CA ]] && python3 - "$HUB_PORT" "$CADDY_PORT" <<'PY' 2>/dev/null; then break; fi
import socket, sys
for port in sys.argv[1:]:
    socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
PY
  sleep 0.1
done
[[ -s $ROOT_CA ]] || { echo "caddy.sh: Caddy did not make its CA; see $WORK/caddy.log" >&2; exit 1; }

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  echo "caddy: $(caddy version)"
  echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$WORK/machine.txt"

say "caddy_cost --samples $SAMPLES --rounds $ROUNDS"
"$WORK/bin/caddy_cost" --direct "ws://127.0.0.1:$HUB_PORT" --proxied "wss://127.0.0.1:$CADDY_PORT" \
  --ca-file "$ROOT_CA" --samples "$SAMPLES" --rounds "$ROUNDS" | tee "$WORK/caddy.jsonl"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/machine.txt"

if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  cp "$WORK/caddy.jsonl" "$WORK/machine.txt" "$WORK/hephd.log" "$WORK/caddy.log" "$WORK/Caddyfile" "$OUT/"
  echo "caddy.sh: results in $OUT" >&2
fi
