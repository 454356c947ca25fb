#!/usr/bin/env bash
# test.sh installs PostgreSQL if needed, then vets and tests the module
# with the race detector. Integration tests must not skip here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-postgres.sh

echo "+ go vet ./..."
go vet ./...

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
