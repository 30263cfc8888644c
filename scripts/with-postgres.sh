#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Runs CMD with a throwaway PostgreSQL server: initdb into a temporary
# directory, start the server on 127.0.0.1 with a free port (fsync off, unix
# sockets in the temporary directory), create a database, export
# BATON_TEST_POSTGRES=postgres://USER@127.0.0.1:PORT/baton_test?sslmode=disable,
# run CMD, then stop the server and remove the directory. Exits with CMD's
# exit code.
#
# initdb and pg_ctl are taken from PATH, else from /usr/lib/postgresql/*/bin;
# when neither has them and this runs as root with apt-get, the Debian
# postgresql package is installed. As root, the server runs as the postgres
# user (PostgreSQL refuses to run as root).
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

log() { echo "with-postgres: $*" >&2; }

find_bin() {
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		PG_BIN=$(dirname "$(readlink -f "$(command -v initdb)")")
		return 0
	fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			PG_BIN=$d
			return 0
		fi
	done
	return 1
}

if ! find_bin; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing postgresql with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		{ apt-get update -qq && apt-get install -y -qq postgresql; } >/dev/null 2>&1 ||
			{ log "apt-get install postgresql failed"; exit 1; }
	fi
	find_bin || { log "initdb/pg_ctl not found (install PostgreSQL)"; exit 1; }
fi

# As root, run the server tools as the postgres user.
AS=()
PG_USER=$(id -un)
if [ "$(id -u)" = 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		log "running as root but there is no postgres user to run the server as"
		exit 1
	fi
	AS=(runuser -u postgres --)
	PG_USER=postgres
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/baton-pg.XXXXXX")
chmod 755 "$TMP"
DATA="$TMP/data"
SOCK="$TMP/sock"
mkdir -p "$DATA" "$SOCK"
if [ "$(id -u)" = 0 ]; then
	chown -R postgres: "$TMP"
fi

cleanup() {
	if [ -f "$DATA/postmaster.pid" ]; then
		"${AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() {
	# Succeeds when nothing listens on 127.0.0.1:$1.
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

"${AS[@]}" "$PG_BIN/initdb" -D "$DATA" -U "$PG_USER" -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
	>"$TMP/initdb.log" 2>&1 || {
	"${AS[@]}" "$PG_BIN/initdb" -D "$DATA" -U "$PG_USER" -A trust -E UTF8 --locale=C --no-sync \
		>"$TMP/initdb.log" 2>&1 || { log "initdb failed:"; cat "$TMP/initdb.log" >&2; exit 1; }
}

started=
for attempt in 1 2 3 4 5; do
	PORT=$((55432 + RANDOM % 2000))
	port_free "$PORT" || continue
	if "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$TMP/server.log" -w -t 60 -s \
		-o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$SOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=128MB" \
		start >/dev/null 2>&1; then
		started=1
		break
	fi
done
if [ -z "$started" ]; then
	log "could not start PostgreSQL:"
	cat "$TMP/server.log" >&2 2>/dev/null || true
	exit 1
fi

DB=baton_test
CREATEDB=$PG_BIN/createdb
[ -x "$CREATEDB" ] || CREATEDB=$(command -v createdb || true)
[ -n "$CREATEDB" ] || { log "createdb not found"; exit 1; }
"${AS[@]}" "$CREATEDB" -h "$SOCK" -p "$PORT" -U "$PG_USER" "$DB" >/dev/null 2>"$TMP/createdb.log" ||
	{ log "could not create database $DB:"; cat "$TMP/createdb.log" >&2; exit 1; }

export BATON_TEST_POSTGRES="postgres://$PG_USER@127.0.0.1:$PORT/$DB?sslmode=disable"

set +e
"$@"
rc=$?
set -e
exit "$rc"
