#!/usr/bin/env bash
# Start Coffer on the embedded default (SQLite + a root key file in
# ./.coffer-dev), and on first start show it working: log the CLI in with
# the bootstrap admin, store a secret and read it back. The server then
# keeps running in the foreground (Ctrl-C stops it).
#
#   scripts/dev.sh [--data-dir DIR] [--listen 127.0.0.1:PORT]
set -euo pipefail
cd "$(dirname "$0")/.."

data_dir=.coffer-dev
listen=127.0.0.1:8200
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) data_dir=$2; shift 2 ;;
    --listen) listen=$2; shift 2 ;;
    *) echo "usage: scripts/dev.sh [--data-dir DIR] [--listen 127.0.0.1:PORT]" >&2; exit 2 ;;
  esac
done

if ! command -v cargo >/dev/null; then
  echo "cargo is required (https://rustup.rs)" >&2; exit 1
fi
echo "Building coffer (release)…" >&2
cargo build --release -q -p coffer-cli
coffer=target/release/coffer

log=$(mktemp)
"$coffer" server --dev --data-dir "$data_dir" --listen "$listen" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT INT TERM

url="http://$listen"
for _ in $(seq 1 100); do
  if curl -fsS "$url/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then cat "$log" >&2; exit 1; fi
  sleep 0.1
done
# Print what the server said (URL; bootstrap credentials on first start).
sed -n '1,/^Try:/p' "$log"

access_id=$(sed -n 's/^ *access_id: *\(p-[^ ]*\).*/\1/p' "$log" | head -n1)
access_key=$(sed -n 's/^ *access_key: *\([^ ]*\).*/\1/p' "$log" | head -n1)
if [ -n "$access_id" ]; then
  export COFFER_GATEWAY_URL=$url
  "$coffer" configure --profile dev --access-id "$access_id" --access-key "$access_key" --gateway-url "$url" >/dev/null
  echo
  echo "Demo (profile 'dev' configured with the admin credentials):"
  echo "+ coffer --profile dev create-secret -n /demo/db-password -v s3cr3t-value"
  "$coffer" create-secret --profile dev -n /demo/db-password -v s3cr3t-value
  echo "+ coffer --profile dev get-secret-value -n /demo/db-password"
  "$coffer" get-secret-value --profile dev -n /demo/db-password
  echo "+ coffer --profile dev list-items --path /demo"
  "$coffer" list-items --profile dev --path /demo
else
  echo "(existing data directory $data_dir: credentials were shown on its first start)"
fi
echo
echo "Coffer is running at $url — Ctrl-C to stop."
tail -n 0 -f "$log" --pid=$server &
wait $server
