#!/usr/bin/env bash
# demo.sh installs PostgreSQL if needed, then runs the rotation demo on a
# throwaway cluster. Arguments go to the demo: try -strategy single or -h.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-postgres.sh
exec go run ./examples/rotation "$@"
