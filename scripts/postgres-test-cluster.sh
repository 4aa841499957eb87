#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: installs Debian's PostgreSQL when missing, starts
# a cluster on loopback in a temporary folder as a non-root user (PostgreSQL refuses to run as
# root), creates a database, and prints the URL to reach it. Stop it with `stop FOLDER`.
#
#   url=$(scripts/postgres-test-cluster.sh start /tmp/trellis-pg)   # prints postgres://…
#   scripts/postgres-test-cluster.sh stop /tmp/trellis-pg
#
# Progress goes to stderr, the URL alone to stdout.
set -euo pipefail

command=${1:?usage: postgres-test-cluster.sh start|stop FOLDER}
folder=${2:?usage: postgres-test-cluster.sh start|stop FOLDER}

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# Debian's binaries live in a versioned folder, not on PATH.
find_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

# Runs a PostgreSQL tool as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$command" in
  start)
    if ! bin=$(find_bin); then
      echo "==> installing PostgreSQL (Debian's package)" >&2
      $sudo apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
      bin=$(find_bin)
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    mkdir -p "$folder"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$folder"; fi
    chmod 700 "$folder"
    data="$folder/data"
    as_owner "$bin/initdb" -D "$data" -U trellis --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    # Loopback only, the socket in the cluster's folder; durability is not needed for tests. A
    # random port, tried again elsewhere should another program hold it.
    started=""
    for _ in 1 2 3 4 5; do
      port=${TRELLIS_TEST_POSTGRES_PORT:-$((20000 + RANDOM % 20000))}
      if as_owner "$bin/pg_ctl" -D "$data" -l "$folder/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $folder -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >&2; then
        started=yes
        break
      fi
    done
    if [ -z "$started" ]; then
      echo "error: PostgreSQL did not start; see $folder/server.log" >&2
      cat "$folder/server.log" >&2 || true
      exit 1
    fi
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U trellis trellis_test
    echo "postgres://trellis@127.0.0.1:$port/trellis_test"
    ;;
  stop)
    if bin=$(find_bin) && [ -d "$folder/data" ]; then
      as_owner "$bin/pg_ctl" -D "$folder/data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$folder"
    ;;
  *)
    echo "usage: postgres-test-cluster.sh start|stop FOLDER" >&2
    exit 2
    ;;
esac
