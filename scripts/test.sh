#!/usr/bin/env bash
# The whole test suite: Rust workspace + SDK compatibility + system tests.
#
#   scripts/test.sh                 everything
#   COFFER_TEST_SUITES="sdk system" scripts/test.sh   only some stages
#                                   (stages: lint cargo sdk-python sdk-node
#                                   system fuzz; "sdk" = both SDK stages)
#
# lint = cargo fmt --check, cargo clippy --all-targets -D warnings and
# cargo deny check bans licenses sources (cargo-deny is installed with
# `cargo install --locked` when missing); fuzz = every fuzz target for a
# short, bounded time (scripts/fuzz.sh).
#
# Environment:
#   COFFER_TEST_POSTGRES_URL / COFFER_TEST_MYSQL_URL  use these servers
#   COFFER_NEED_MYSQL=0     do not start a throwaway MariaDB when none is
#                           running (default 1 when the cargo, sdk or system stages
#                           run: their dynamic/rotated secret tests need one;
#                           a running local one is always picked up)
#   COFFER_TEST_THROWAWAY_DB=1  ignore local servers, start throwaway ones
#   COFFER_BIN              server binary for the Python/Node suites
#                           (default $CARGO_TARGET_DIR/debug/coffer, built here)
#   PYTEST_ARGS             extra pytest arguments, e.g. "-k marker -x"
#   COFFER_TEST_SKIP_BUILD=1  skip cargo build (re-running the other suites)
#
# Exits non-zero if any stage fails. Every process it starts (database
# servers, coffer servers left behind by an interrupted test) is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=lib/databases.sh
source "$ROOT/scripts/lib/databases.sh"

SUITES=${COFFER_TEST_SUITES:-lint cargo sdk-python sdk-node system fuzz}
# want STAGE: was STAGE asked for? ("sdk" selects both SDK stages)
want() {
    [[ " $SUITES " == *" $1 "* ]] || { [[ $1 == sdk-* && " $SUITES " == *" sdk "* ]]; }
}

WORK_TMP=$(mktemp -d -t coffer-test.XXXXXX)
REPORTS=$WORK_TMP/reports
mkdir -p "$REPORTS"
# Test fixtures append the PID of every coffer server they start here, so an
# interrupted run can still stop them (see tests/cofferlib.py).
export COFFER_TEST_PIDFILE=$WORK_TMP/coffer.pids
: >"$COFFER_TEST_PIDFILE"

cleanup() {
    local rc=$? pid
    while read -r pid; do
        [[ -n $pid ]] || continue
        # Only PIDs still running a coffer binary (not a recycled PID).
        if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q coffer; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done <"$COFFER_TEST_PIDFILE"
    stop_databases
    rm -rf "$WORK_TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STARTED=$SECONDS
declare -a RESULTS=()
FAILED=0
# stage NAME CMD...: run a stage, record its time and outcome, keep going.
stage() {
    local name=$1 t0=$SECONDS rc=0
    shift
    log "$name"
    "$@" || rc=$?
    RESULTS+=("$(printf '%-14s %-6s %4ss' "$name" "$([[ $rc -eq 0 ]] && echo ok || echo FAILED)" $((SECONDS - t0)))")
    [[ $rc -eq 0 ]] || FAILED=1
    return 0
}

# ------------------------------------------------------------- prerequisites
command -v cargo >/dev/null || die "cargo not found"
command -v python3 >/dev/null || die "python3 not found"
# The system stage needs node too: test_aws_iam.py signs with the AWS SDK for
# JavaScript v3 installed in tests/sdk/node.
if { want sdk-node || want system; } && ! command -v node >/dev/null; then
    apt_install nodejs npm
fi

setup_python() {
    local venv=$ROOT/.venv-test stamp
    stamp=$(sha256sum tests/requirements.txt | cut -c1-16)
    if [[ ! -x $venv/bin/python || $(cat "$venv/.requirements-stamp" 2>/dev/null) != "$stamp" ]]; then
        log "Python virtualenv $venv (tests/requirements.txt)"
        rm -rf "$venv"
        python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
        echo "$stamp" >"$venv/.requirements-stamp"
    fi
    PY=$venv/bin/python
}

setup_node() {
    local dir=tests/sdk/node stamp
    stamp=$(sha256sum "$dir/package-lock.json" | cut -c1-16)
    if [[ ! -d $dir/node_modules || $(cat "$dir/node_modules/.lock-stamp" 2>/dev/null) != "$stamp" ]]; then
        log "npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$stamp" >"$dir/node_modules/.lock-stamp"
    fi
}

# ------------------------------------------------------------------ services
ensure_postgres
# The cargo, SDK and system suites test dynamic and rotated secrets on MariaDB.
if want cargo || want sdk-python || want sdk-node || want system; then
    export COFFER_NEED_MYSQL=${COFFER_NEED_MYSQL:-1}
fi
ensure_mysql

# The cargo stage needs the venv too: coffer-ci's AWS tests run moto from it.
if want sdk-python || want system || want cargo; then
    setup_python
    export COFFER_MOTO_SERVER=$ROOT/.venv-test/bin/moto_server COFFER_REQUIRE_MOTO=1
fi
if want sdk-node || want system; then setup_node; fi

# --------------------------------------------------------------------- cargo
# Always build (the Python/Node suites need target/debug/coffer), unless
# COFFER_TEST_SKIP_BUILD=1 for a quick re-run of the non-cargo suites.
if [[ ${COFFER_TEST_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --workspace --all-targets"
    t0=$SECONDS
    cargo build --workspace --all-targets
    RESULTS+=("$(printf '%-14s %-6s %4ss' build ok $((SECONDS - t0)))")
fi

# limit SECONDS CMD...: under CI, a time limit per test stage so one hanging
# test cannot eat CI's 90 minutes (`timeout` signals the stage's whole process
# group). Interactive runs go without, so Ctrl-C reaches the tests at once.
limit() {
    if [[ ${CI:-} == true ]]; then timeout --kill-after=30 "$@"; else shift; "$@"; fi
}

if want lint; then
    stage "lint" limit 1800 bash scripts/lint.sh
fi

if want cargo; then
    stage "cargo test" limit 1500 cargo test --workspace --no-fail-fast
fi

export COFFER_BIN=${COFFER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/coffer}
[[ $COFFER_BIN == /* ]] || COFFER_BIN=$ROOT/$COFFER_BIN

# ------------------------------------------------------ SDK and system tests
run_pytest() { # NAME DIR
    # shellcheck disable=SC2086
    limit 900 "$PY" -m pytest -c tests/pytest.ini --junitxml="$REPORTS/$1.xml" -p no:cacheprovider \
        ${PYTEST_ARGS:-} "$2"
}
run_node() {
    (cd tests/sdk/node && limit 300 node --test --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=junit --test-reporter-destination="$REPORTS/sdk-node.xml" sdk.test.mjs)
}

if want sdk-python; then stage "sdk-python" run_pytest sdk-python tests/sdk/python; fi
if want sdk-node; then stage "sdk-node" run_node; fi
if want system; then stage "system" run_pytest system tests/system; fi
# Every fuzz target for a short time: catches a parser that now crashes on
# the committed corpus or on what a few seconds of fuzzing find. The long
# runs (10 million executions each) are in docs/fuzzing.md.
if want fuzz; then stage "fuzz" limit 1200 bash scripts/fuzz.sh --seconds "${COFFER_FUZZ_SECONDS:-15}"; fi

# ------------------------------------------------------------------- summary
echo
log "summary ($((SECONDS - STARTED))s in all)"
printf '  %s\n' "${RESULTS[@]}"
# The closing line counts the tests of the non-cargo suites (cargo test
# prints its own "test result:" lines above).
if compgen -G "$REPORTS/*.xml" >/dev/null; then
    python3 scripts/lib/junit_summary.py "$REPORTS"/*.xml || FAILED=1
fi
exit "$FAILED"
