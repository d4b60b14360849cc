#!/usr/bin/env bash
# Install and start a local PostgreSQL (Debian package) for the tests; print its URL.
# Usage: export DUTYCALL_TEST_DATABASE_URL="$(bash scripts/postgres.sh)"
# The URL uses the Unix socket, so it also works inside the tests' private network namespace.
set -euo pipefail
{
    if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
        pg_createcluster "$version" main >/dev/null
    fi
    cluster=$(pg_lsclusters -h | head -1 | awk '{print $1" "$2}')
    pg_ctlcluster $cluster start 2>/dev/null || true
    for _ in $(seq 1 60); do
        su postgres -c "psql -tAc 'select 1'" >/dev/null 2>&1 && break
        sleep 0.5
    done
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='root'\"" | grep -q 1 \
        || su postgres -c "psql -qc 'CREATE ROLE root SUPERUSER LOGIN'"
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='dutycall_test'\"" | grep -q 1 \
        || su postgres -c "createdb -O root dutycall_test"
} >&2
echo "postgresql+asyncpg:///dutycall_test?host=/var/run/postgresql"
