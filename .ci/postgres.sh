#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages, starts it on loopback only, and creates the database
# of the shared-study test. Prints the URL for SB3_DUELING_TEST_POSTGRES_URL.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
read -r version cluster port _ < <(pg_lsclusters --no-header | head -n 1)
pg_ctlcluster "$version" "$cluster" start -o "-c listen_addresses=127.0.0.1" >&2 || true  # already running is fine
for _ in $(seq 30); do
    su postgres -c "pg_isready -q -h 127.0.0.1 -p $port" && break
    sleep 1
done
su postgres -c "psql -q -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname = 'sb3_dueling'\"" | grep -q 1 \
    || su postgres -c "psql -q -p $port -c \"CREATE ROLE sb3_dueling LOGIN PASSWORD 'sb3_dueling'\"" >&2
su postgres -c "psql -q -p $port -tc \"SELECT 1 FROM pg_database WHERE datname = 'sb3_dueling_optuna'\"" | grep -q 1 \
    || su postgres -c "createdb -p $port -O sb3_dueling sb3_dueling_optuna" >&2
echo "postgresql://sb3_dueling:sb3_dueling@127.0.0.1:$port/sb3_dueling_optuna"
