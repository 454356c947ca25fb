#!/usr/bin/env bash
# test.sh installs PostgreSQL if needed, then vets and tests the module
# with the race detector. Integration tests must not skip here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-postgres.sh

echo "+ go vet ./..."
go vet ./...

# The core stays free of the integrations' dependencies: only lib/pq, zap
# and backoff beyond the standard library.
echo "+ go list -deps . (the root package imports no SDK, driver or ORM)"
if go list -deps . | grep -E 'jackc/pgx|aws-sdk-go|hashicorp/vault|prometheus|opentelemetry|fsnotify|gorm|uptrace/bun|jmoiron/sqlx'; then
    echo "the root package imports an integration's dependency" >&2
    exit 1
fi

echo "+ GOPQR_REQUIRE_PG=1 go test -race -count=1 -p 1 ./..."
# -p 1: one package at a time, so timing-sensitive rotation tests do not
# compete for two cores with the other packages.
GOPQR_REQUIRE_PG=1 go test -race -count=1 -p 1 ./...

# The same rotation, fault and window suites of the root package on pgx v5
# (the run above uses lib/pq).
echo "+ GOPQR_TEST_BACKEND=pgx go test -race -count=1 -run '^Test(Integration|Fault)' ."
GOPQR_TEST_BACKEND=pgx GOPQR_REQUIRE_PG=1 go test -race -count=1 -run '^Test(Integration|Fault)' .

# Short fuzz runs of the DSN and Pair targets; longer ones are for humans.
for target in FuzzOpenDSN FuzzPairFormatting; do
    echo "+ go test -run='^\$' -fuzz=$target -fuzztime=10s ."
    go test -run='^$' -fuzz="$target" -fuzztime=10s .
done
