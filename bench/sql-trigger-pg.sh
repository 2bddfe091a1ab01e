#!/usr/bin/env bash
# Submit rate of the gearbox PostgreSQL extension from a trigger (issue 14): a bulk
# `INSERT ... SELECT generate_series(1, N)` into a table whose AFTER INSERT trigger submits one
# background job per row, with gman_do_background (one round trip per row, during the insert)
# and with gman_do_background_on_commit (queued in memory, sent in batches at COMMIT). Prints
# rows/s for each. No worker runs: the jobs stay queued in gearboxd, which is what the submit
# rate needs.
#
#   bench/sql-trigger-pg.sh                   # N=100000, 3 rounds
#   N=20000 ROUNDS=5 STORE=sqlite bench/sql-trigger-pg.sh
#
# Needs the extension installed (bash .ci/build-pg-extension) and PostgreSQL's server binaries
# (apt-get install postgresql). Starts a throwaway cluster (initdb in $OUT, a free port, run as
# `postgres` when we are root) and a release gearboxd with `-q builtin` (STORE=sqlite: its
# default SQLite store in $OUT, durable background jobs).
#
# Environment: N (100000), ROUNDS (3), STORE (builtin), PG_BIN (/usr/lib/postgresql/15/bin),
# OUT (a new temp dir).
set -euo pipefail

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
STORE=${STORE:-builtin}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/gearbox-sql-trigger-pg.XXXXXX)}
mkdir -p "$OUT"
# free_port, wait_port, build_gearbox
. "$ROOT/bench/lib.sh"

if [ ! -f "$("$PG_BIN/pg_config" --sharedir)/extension/gearbox.control" ]; then
    echo "the gearbox extension is not installed: run bash .ci/build-pg-extension" >&2
    exit 1
fi
build_gearbox

pg_as_owner
PGDATA=$OUT/pgdata
PGPORT=$(free_port)
GBPORT=$(free_port)
GBPID=""
cleanup() {
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
    [ -n "$GBPID" ] && kill "$GBPID" 2>/dev/null
    wait 2>/dev/null || true
}
trap cleanup EXIT

"${AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$OUT/pg.log" -w \
    -o "-p $PGPORT -k $OUT -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null

case "$STORE" in
    builtin) store=(-q builtin) ;;
    sqlite) store=() ;;
    *) echo "STORE is builtin or sqlite" >&2; exit 1 ;;
esac
(cd "$OUT" && exec "$GEARBOXD" -p "$GBPORT" -L 127.0.0.1 "${store[@]}" 2>"$OUT/gearboxd.log") &
GBPID=$!
wait_port "$GBPORT"

psql() { command "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION gearbox" \
     -c "ALTER DATABASE postgres SET gearbox.servers = '127.0.0.1:$GBPORT'"
for variant in background background_on_commit; do
    psql <<SQL
CREATE TABLE t_$variant (id int);
CREATE FUNCTION t_${variant}_job() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  PERFORM gman_do_$variant('bench_$variant', NEW.id::text);
  RETURN NEW;
END \$\$;
CREATE TRIGGER t_${variant}_job AFTER INSERT ON t_$variant
  FOR EACH ROW EXECUTE FUNCTION t_${variant}_job();
SQL
done

now() { date +%s.%N; }
echo "N=$N rows per insert, store $STORE, $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for round in $(seq 1 "$ROUNDS"); do
    for variant in background background_on_commit; do
        start=$(now)
        psql -c "INSERT INTO t_$variant SELECT g FROM generate_series(1, $N) g"
        end=$(now)
        python3 -c "import sys; n, s, e = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]); \
print(f'round {sys.argv[4]}  {sys.argv[5]:<30} {n / (e - s):>10.0f} rows/s  ({e - s:.2f} s)')" \
            "$N" "$start" "$end" "$round" "gman_do_$variant"
    done
done
echo "queued in gearboxd (function, jobs):"
exec 3<>"/dev/tcp/127.0.0.1/$GBPORT"
printf 'status\r\n' >&3
while IFS=$'\t\r' read -r f jobs _; do
    [ "$f" = "." ] && break
    echo "  $f $jobs"
done <&3
exec 3>&-
