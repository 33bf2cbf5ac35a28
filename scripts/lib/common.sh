# shellcheck shell=bash
# Small helpers shared by scripts/*.sh and bench/run.sh.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[33mwarning: %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31merror: %s\033[0m\n' "$*" >&2; exit 1; }

# A TCP port on 127.0.0.1 that is free right now (the kernel picks it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL [SECONDS]: poll until URL answers with any HTTP status.
wait_http() {
    local url=$1 secs=${2:-60} i
    for ((i = 0; i < secs * 10; i++)); do
        curl -s -o /dev/null --max-time 2 "$url" && return 0
        sleep 0.1
    done
    return 1
}
