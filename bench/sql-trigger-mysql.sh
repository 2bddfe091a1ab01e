#!/usr/bin/env bash
# Rows per second through an AFTER INSERT trigger that submits one background job per row
# with gearbox-mysql-udf's gman_do_background (issue 14), next to the same insert into a table
# without the trigger.
#
#   bench/sql-trigger-mysql.sh              # N=100000, 3 rounds
#   N=20000 ROUNDS=5 bench/sql-trigger-mysql.sh
#
# It builds gearboxd and the UDF library (release), starts a throwaway MariaDB (Debian's
# mariadb-server binaries, a temporary data directory, a free port on 127.0.0.1, the release
# directory as --plugin-dir) and gearboxd with the memory queue (-q builtin, no worker: the
# jobs stay queued), then per round: `INSERT INTO plain SELECT seq, ... FROM seq_1_to_N` (the
# SEQUENCE engine) and the same into `triggered`, timed from the client, and checks that
# gearboxd holds N more queued jobs. Prints rows/s per round and the median.
#
# Environment: N (100000 rows per insert), ROUNDS (3), OUT (a new temp dir: the data directory
# and server logs, removed at the end unless KEEP=1).
set -euo pipefail

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/gearbox-sql-trigger.XXXXXX)}
mkdir -p "$OUT"
# free_port, wait_port, build_gearbox
. "$ROOT/bench/lib.sh"

for p in mariadbd mariadb-install-db mariadb; do
    command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || {
        echo "$p not found: apt-get install mariadb-server mariadb-client" >&2; exit 1; }
done
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)

build_gearbox
(cd "$ROOT" && cargo build --release --quiet -p gearbox-mysql-udf)
PLUGIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
[ -f "$PLUGIN_DIR/libgearbox_mysql_udf.so" ] || { echo "no $PLUGIN_DIR/libgearbox_mysql_udf.so" >&2; exit 1; }

DB_PID=""
GB_PID=""
cleanup() {
    [ -n "$GB_PID" ] && kill "$GB_PID" 2>/dev/null
    [ -n "$DB_PID" ] && kill "$DB_PID" 2>/dev/null
    wait 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT

echo "MariaDB data directory in $OUT" >&2
mkdir -p "$OUT/tmp"
TMPDIR="$OUT/tmp" mariadb-install-db --no-defaults --datadir="$OUT/data" --user="$(id -un)" \
    --auth-root-authentication-method=normal --skip-test-db >"$OUT/install.log" 2>&1
DB_PORT=$(free_port)
"$MARIADBD" --no-defaults --datadir="$OUT/data" --socket="$OUT/sock" --pid-file="$OUT/pid" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --tmpdir="$OUT/tmp" --user="$(id -un)" \
    --skip-name-resolve --plugin-dir="$PLUGIN_DIR" --innodb-buffer-pool-size=256M \
    >"$OUT/mariadb.log" 2>&1 &
DB_PID=$!
wait_port "$DB_PORT"

GB_PORT=$(free_port)
"$GEARBOXD" -p "$GB_PORT" -L 127.0.0.1 -q builtin 2>"$OUT/gearboxd.log" &
GB_PID=$!
wait_port "$GB_PORT"

sql() { mariadb --no-defaults --socket="$OUT/sock" -u root -NB "$@"; }

sql <<SQL
CREATE DATABASE bench;
CREATE FUNCTION gman_servers_set RETURNS STRING SONAME 'libgearbox_mysql_udf.so';
CREATE FUNCTION gman_do_background RETURNS STRING SONAME 'libgearbox_mysql_udf.so';
SELECT gman_servers_set('127.0.0.1:$GB_PORT') INTO @servers;
USE bench;
CREATE TABLE plain (id INT PRIMARY KEY, body VARCHAR(64)) ENGINE=InnoDB;
CREATE TABLE triggered (id INT PRIMARY KEY, body VARCHAR(64)) ENGINE=InnoDB;
CREATE TRIGGER triggered_job AFTER INSERT ON triggered FOR EACH ROW
  SET @gearman_handle = gman_do_background('reindex', CONCAT('row ', NEW.id));
SQL

# queued: the number of jobs gearboxd holds for `reindex` (admin `status`, 2nd column).
queued() {
    exec 3<>"/dev/tcp/127.0.0.1/$GB_PORT"
    printf 'status\r\n' >&3
    local n=0 f q rest
    while IFS=$'\t' read -r f q rest <&3; do
        [ "${f%$'\r'}" = "." ] && break
        [ "$f" = reindex ] && n=$q
    done
    exec 3>&-
    echo "$n"
}

# timed TABLE: inserts N rows into TABLE (emptied first); prints the seconds it took.
timed() {
    sql bench -e "TRUNCATE TABLE $1"
    local t0 t1
    t0=$(date +%s%N)
    sql bench -e "INSERT INTO $1 SELECT seq, CONCAT('body ', seq) FROM seq_1_to_$N"
    t1=$(date +%s%N)
    echo "scale=3; ($t1 - $t0) / 1000000000" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "N=$N rows per insert, $ROUNDS rounds, $(nproc) cores" >&2
plain=() trig=()
for r in $(seq 1 "$ROUNDS"); do
    before=$(queued)
    s_plain=$(timed plain)
    s_trig=$(timed triggered)
    after=$(queued)
    [ $((after - before)) -eq "$N" ] || {
        echo "round $r: gearboxd got $((after - before)) jobs, expected $N" >&2; exit 1; }
    p=$(echo "$N / $s_plain" | bc)
    t=$(echo "$N / $s_trig" | bc)
    plain+=("$p") trig+=("$t")
    echo "round $r: plain ${s_plain}s ($p rows/s), trigger ${s_trig}s ($t rows/s)"
done
mp=$(printf '%s\n' "${plain[@]}" | median)
mt=$(printf '%s\n' "${trig[@]}" | median)
echo "median: plain $mp rows/s, with the gman_do_background trigger $mt rows/s"
