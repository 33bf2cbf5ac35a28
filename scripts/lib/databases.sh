# shellcheck shell=bash
# Database servers for the test suites. Sourced by scripts/test.sh.
#
#   ensure_postgres   exports COFFER_TEST_POSTGRES_URL: superuser "postgres",
#                     database "postgres" (the Rust tests create and drop
#                     their own databases there)
#   ensure_mysql      exports COFFER_TEST_MYSQL_URL: root, database coffer_test
#                     (starts a throwaway server only with COFFER_NEED_MYSQL=1,
#                     which scripts/test.sh sets for the sdk and system stages)
#   stop_databases    stops whatever these functions started (call from a trap)
#
# Each function first uses a server that is already there (a URL set by the
# caller, or a local server on the standard port with trust / empty-password
# root login, as on the project's machines). Only when there is none does it
# install the Debian package (when root and missing) and start a throwaway
# server on a free loopback port with its data in a temp dir, removed again
# by stop_databases.
#
# Needs: log, die, free_port and $WORK_TMP from scripts/lib/common.sh.

DB_TEST_NAME=coffer_test
_PG_STARTED_DIR=""
_MYSQL_STARTED_PID=""

# tcp_open HOST PORT: is something listening there?
tcp_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# apt_install PKG...: install Debian packages (root only), refreshing the
# package lists once if the first attempt fails (fresh machine).
apt_install() {
    [[ $(id -u) -eq 0 ]] || die "need $* but not root: install it or run as root"
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get install $*"
    if ! apt-get install -y -q --no-install-recommends "$@" >"$WORK_TMP/apt.log" 2>&1; then
        apt-get update -q >>"$WORK_TMP/apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends "$@" >>"$WORK_TMP/apt.log" 2>&1 \
            || { tail -20 "$WORK_TMP/apt.log" >&2; die "apt-get install $* failed"; }
    fi
}

# ---------------------------------------------------------------- PostgreSQL

_pg_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x $d/initdb ]] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

# _as_pg CMD...: PostgreSQL refuses to run as root, so use the postgres user.
_as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_postgres() {
    if [[ -n ${COFFER_TEST_POSTGRES_URL:-} ]]; then
        log "PostgreSQL: using COFFER_TEST_POSTGRES_URL from the environment"
        return 0
    fi
    if [[ ${COFFER_TEST_THROWAWAY_DB:-0} != 1 ]] && tcp_open 127.0.0.1 5432 && command -v psql >/dev/null \
        && psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -XAtqc 'select 1' >/dev/null 2>&1; then
        export COFFER_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
        log "PostgreSQL: using the local server on 127.0.0.1:5432"
        return 0
    fi

    local bindir
    if ! bindir=$(_pg_bindir); then
        apt_install postgresql
        bindir=$(_pg_bindir) || die "postgresql installed but initdb not found"
    fi
    local dir port
    # Not under $WORK_TMP: that is private to root, and the cluster runs as postgres.
    dir=$(mktemp -d -t coffer-pg.XXXXXX)
    port=$(free_port)
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    log "PostgreSQL: starting a throwaway cluster on 127.0.0.1:$port ($dir)"
    _as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$WORK_TMP/pg-initdb.log" 2>&1 \
        || { tail -20 "$WORK_TMP/pg-initdb.log" >&2; die "initdb failed"; }
    # fsync off: a test cluster need not survive a power cut.
    _as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
        || { tail -20 "$dir/server.log" >&2; die "pg_ctl start failed"; }
    _PG_STARTED_DIR=$dir
    _PG_BINDIR=$bindir
    export COFFER_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# ------------------------------------------------------------------- MariaDB

_mysql_ok() { # HOST PORT
    mariadb --protocol=tcp -h "$1" -P "$2" -uroot --connect-timeout=3 -Nse 'select 1' >/dev/null 2>&1
}

ensure_mysql() {
    if [[ -n ${COFFER_TEST_MYSQL_URL:-} ]]; then
        log "MariaDB: using COFFER_TEST_MYSQL_URL from the environment"
        return 0
    fi
    if [[ ${COFFER_TEST_THROWAWAY_DB:-0} != 1 ]] && tcp_open 127.0.0.1 3306 && command -v mariadb >/dev/null \
        && _mysql_ok 127.0.0.1 3306; then
        mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -e "create database if not exists $DB_TEST_NAME"
        export COFFER_TEST_MYSQL_URL="mysql://root@127.0.0.1:3306/$DB_TEST_NAME"
        log "MariaDB: using the local server on 127.0.0.1:3306"
        return 0
    fi
    if [[ ${COFFER_NEED_MYSQL:-0} != 1 ]]; then
        log "MariaDB: none running and COFFER_NEED_MYSQL is not 1: the MySQL tests will be skipped"
        return 0
    fi

    if ! command -v mariadbd >/dev/null && [[ ! -x /usr/sbin/mariadbd ]]; then
        apt_install mariadb-server mariadb-client
    fi
    local mariadbd dir port
    mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
    dir=$(mktemp -d "$WORK_TMP/mariadb.XXXXXX")
    port=$(free_port)
    log "MariaDB: starting a throwaway server on 127.0.0.1:$port ($dir)"
    # --auth-root-authentication-method=normal: root@localhost with an empty
    # password (no unix_socket auth), reachable over TCP like the CI service.
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$dir/data" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
        || { tail -20 "$dir/install.log" >&2; die "mariadb-install-db failed"; }
    "$mariadbd" --no-defaults --user="$(id -un)" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
        --port="$port" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$dir/mysqld.pid" \
        --log-error="$dir/error.log" --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=64M \
        >/dev/null 2>&1 &
    _MYSQL_STARTED_PID=$!
    local i
    for ((i = 0; i < 600; i++)); do
        _mysql_ok 127.0.0.1 "$port" && break
        kill -0 "$_MYSQL_STARTED_PID" 2>/dev/null || { tail -20 "$dir/error.log" >&2; die "mariadbd exited"; }
        sleep 0.1
    done
    _mysql_ok 127.0.0.1 "$port" || { tail -20 "$dir/error.log" >&2; die "mariadbd did not come up in 60 s"; }
    mariadb --protocol=tcp -h 127.0.0.1 -P "$port" -uroot -e "create database if not exists $DB_TEST_NAME"
    export COFFER_TEST_MYSQL_URL="mysql://root@127.0.0.1:$port/$DB_TEST_NAME"
}

stop_databases() {
    if [[ -n $_MYSQL_STARTED_PID ]]; then
        kill "$_MYSQL_STARTED_PID" 2>/dev/null && wait "$_MYSQL_STARTED_PID" 2>/dev/null || true
        _MYSQL_STARTED_PID=""
    fi
    if [[ -n $_PG_STARTED_DIR ]]; then
        _as_pg "$_PG_BINDIR/pg_ctl" -D "$_PG_STARTED_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$_PG_STARTED_DIR"
        _PG_STARTED_DIR=""
    fi
}
