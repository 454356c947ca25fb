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

# Short fuzz runs of the DSN and Pair targets and of the secret sources'
# parsers, as package:target:budget; longer ones are for humans. The
# budgets count executions, not seconds: a time budget can end a run with
# a spurious "context deadline exceeded" on Go 1.26 (golang/go#75804).
for run in .:FuzzOpenDSN:20000x .:FuzzPairFormatting:5000x \
    ./awssm:FuzzParseSecret:20000x ./vault:FuzzParseResponse:50000x ./filesecret:FuzzParseSecret:2000x; do
    IFS=: read -r pkg target fuzztime <<<"$run"
    echo "+ go test -run='^\$' -fuzz=$target -fuzztime=$fuzztime $pkg"
    go test -run='^$' -fuzz="$target" -fuzztime="$fuzztime" "$pkg"
done
