#!/bin/bash
# Run once by the postgres image on an empty data directory: one role and one database
# per service, each role owning only its own database (as in production). The passwords
# come from the mounted postgres-credentials Secret. It does not run again on a data
# directory that already exists: a service added later (care, webhooks) needs its role
# and database created by hand there (README "Deploy", dev cluster).
set -euo pipefail
for svc in tickets returns dispatch care webhooks; do
  password="$(cat "/run/secrets/postgres/${svc}-password")"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$svc" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
