#!/usr/bin/env bash
# ensure-postgres.sh makes sure PostgreSQL server binaries (initdb and
# postgres) are available to internal/pgtest, which looks in $PG_BIN, then
# on $PATH, then in /usr/lib/postgresql/*/bin. When none are found it
# installs Debian's postgresql package and stops the cluster the package
# may have started, since the tests run their own servers. Safe to rerun.
set -euo pipefail

log() { echo "ensure-postgres: $*"; }

# find_bin_dir prints the first directory holding both binaries, in the
# order pgtest uses, and fails when there is none.
find_bin_dir() {
    if [[ -n "${PG_BIN:-}" ]]; then
        [[ -x "$PG_BIN/initdb" && -x "$PG_BIN/postgres" ]] || return 1
        echo "$PG_BIN"
        return 0
    fi
    local initdb dir
    if initdb=$(command -v initdb) && [[ -x "$(dirname "$initdb")/postgres" ]]; then
        dirname "$initdb"
        return 0
    fi
    # Highest version first: /usr/lib/postgresql/VERSION/bin, field 5.
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rV); do
        if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# as_root runs a command as root, through sudo when needed.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        log "need root or sudo to run: $*" >&2
        return 1
    fi
}

install_postgres() {
    log "installing Debian package postgresql"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends postgresql
}

# stop_distro_clusters stops every cluster that postgresql-common runs and
# keeps it from starting at boot.
stop_distro_clusters() {
    command -v pg_lsclusters >/dev/null || return 0
    local ver name port status rest
    while read -r ver name port status rest; do
        if [[ "$status" == online* ]]; then
            log "stopping distribution cluster $ver/$name on port $port"
            as_root pg_ctlcluster "$ver" "$name" stop
        fi
        if [[ -f "/etc/postgresql/$ver/$name/start.conf" ]]; then
            log "setting cluster $ver/$name to start manually"
            echo manual | as_root tee "/etc/postgresql/$ver/$name/start.conf" >/dev/null
        fi
    done < <(pg_lsclusters --no-header 2>/dev/null || true)
    if [[ -d /run/systemd/system ]]; then
        log "disabling the postgresql systemd service"
        as_root systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi
}

main() {
    local dir
    if [[ -n "${PG_BIN:-}" ]] && ! find_bin_dir >/dev/null; then
        log "PG_BIN=$PG_BIN does not hold executable initdb and postgres" >&2
        return 1
    fi
    if dir=$(find_bin_dir); then
        log "found PostgreSQL binaries in $dir; nothing to do"
        return 0
    fi
    install_postgres
    stop_distro_clusters
    if ! dir=$(find_bin_dir); then
        log "installed postgresql but still found no initdb and postgres" >&2
        return 1
    fi
    log "PostgreSQL binaries are in $dir"
}

# Run main unless sourced (sourcing lets a test stub the commands).
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
