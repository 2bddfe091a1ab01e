#!/usr/bin/env bash
# Cluster mode (several gearboxd sharing one PostgreSQL store) next to a single gearboxd on the
# same store: throughput and server CPU per job with 1, 2 and 3 members.
#
#   bench/cluster.sh                    # 3 rounds, full job counts (about 9 min on 2 cores)
#   ROUNDS=5 SCALE=50 bench/cluster.sh  # more rounds, half the jobs
#
# Starts one throwaway PostgreSQL 15 (initdb in $OUT, a free port below 32768, run as
# `postgres` when we are root, fsync=off as bench/sql-trigger-pg.sh, synchronous_commit as
# SYNC_COMMIT, default on: a commit waits for its WAL write, not for a disk flush since fsync
# is off). Each round runs every configuration, in an order that rotates, on a fresh database
# (so no run sees another's rows):
#   single     one gearboxd -q libpq without --cluster (the baseline: same store, no cluster);
#   cluster-N  N gearboxd -q libpq --cluster (N = 1, 2, 3; ids m1..mN, default heartbeat,
#              dead-after and poll settings), each on its own loopback port.
# Scenarios, with `gearbox bench` processes (the tool talks to one server, so there is one
# process per member and the script times them from outside):
#   bg         pipelined clients submit BG_JOBS background jobs, split over every member
#              (--no-drain); then pipelined workers, split over every member, drain the
#              shared queue (bench bg --no-submit) until the table is empty (polled every
#              50 ms: the single server's sub-second phases are near that resolution).
#              Submitted and completed jobs/s.
#   fg-cross   foreground, classic clients on member 1 only, workers on the last member only:
#              with 2+ members every job crosses a bridge. Jobs/s and latency.
#   fg-spread  foreground, classic clients and workers split over every member.
# CLIENTS and WORKERS are totals, split evenly over the members (keep them multiples of 6).
# Jobs/s are the jobs over the wall time of all client (or worker) processes of the phase.
# Server CPU per job is user+sys of every gearboxd and of PostgreSQL (the postmaster, its live
# backends and its exited ones) from /proc, over the phase, divided by the jobs; the load
# generator is not counted. PostgreSQL's transactions and rows read per job come from
# pg_stat_database (the whole database: heartbeats and polls included). The summary prints
# the median of the rounds and the ratio to `single`. Raw JSON, server logs and results.tsv
# stay in $OUT.
#
# On a 2-core machine the members, PostgreSQL and the load generator share the two cores:
# more members do not add throughput there; the figure to read is the cost per job.
#
# Environment: ROUNDS (3), SCALE (100: percent of BG_JOBS and FG_JOBS), BG_JOBS (30000),
# FG_JOBS (20000), CLIENTS (12), WORKERS (6), DEPTH (32), GEARBOXD_THREADS (1),
# CONFIGS ("single cluster-1 cluster-2 cluster-3"; single must be one of them),
# SYNC_COMMIT (on), DRAIN_TIMEOUT (300 s), PG_BIN (/usr/lib/postgresql/15/bin),
# OUT (a new temp dir).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-100}
n() { echo $(( $1 * SCALE / 100 > 0 ? $1 * SCALE / 100 : 1 )); }
BG_JOBS=$(n "${BG_JOBS:-30000}")
FG_JOBS=$(n "${FG_JOBS:-20000}")
CLIENTS=${CLIENTS:-12}
WORKERS=${WORKERS:-6}
DEPTH=${DEPTH:-32}
GEARBOXD_THREADS=${GEARBOXD_THREADS:-1}
SYNC_COMMIT=${SYNC_COMMIT:-on}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
read -r -a CONFIGS <<<"${CONFIGS:-single cluster-1 cluster-2 cluster-3}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/gearbox-cluster.XXXXXX)}
mkdir -p "$OUT"
# wait_port
. "$ROOT/bench/lib.sh"

build_gearbox

pg_as_owner
PGDATA=$OUT/pgdata
PGPORT=$(low_port)
PIDS=()
PORTS=()
BG_PIDS=()
stop_members() {
    local p
    for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"} ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
    for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"} ${PIDS[@]+"${PIDS[@]}"}; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    PIDS=(); PORTS=(); BG_PIDS=()
}
cleanup() {
    stop_members
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

"${AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$OUT/pg.log" -w -o "-p $PGPORT -k $OUT \
    -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=$SYNC_COMMIT \
    -c max_connections=300" start >/dev/null
PGPID=$(head -1 "$PGDATA/postmaster.pid")

psql() { command "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }

# cpu: seconds of CPU (user+sys) used so far by the members and PostgreSQL.
cpu() {
    python3 - "$PGPID" ${PIDS[@]+"${PIDS[@]}"} <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
pg, members = sys.argv[1], sys.argv[2:]
ticks = 0
for pid in members:
    s = stat(pid)
    if s:
        ticks += int(s[11]) + int(s[12])
s = stat(pg)
ticks += int(s[11]) + int(s[12]) + int(s[13]) + int(s[14])  # and its exited backends
for d in os.listdir("/proc"):
    if d.isdigit():
        s = stat(d)
        if s and s[1] == pg:
            ticks += int(s[11]) + int(s[12])
print(ticks / hz)
PY
}

# record CONFIG ROUND SCENARIO METRIC VALUE
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT/results.tsv"; }
rate() { python3 -c 'import sys; print(f"{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.1f}")' "$@"; }
per_job() { python3 -c 'import sys; print(f"{(float(sys.argv[3]) - float(sys.argv[2])) * 1e6 / int(sys.argv[1]):.1f}")' "$@"; }

# start CONFIG ROUND: a fresh database and the members of CONFIG on it (PIDS, PORTS).
start() {
    local config=$1 round=$2 k cluster=()
    local db=${config//-/_}_r$round
    psql -c "CREATE DATABASE $db"
    case $config in
        single) k=1 ;;
        cluster-*) k=${config#cluster-} ;;
    esac
    for i in $(seq 1 "$k"); do
        local port
        port=$(low_port)
        [ "$config" = single ] || cluster=(--cluster --cluster-id "m$i")
        "$GEARBOXD" -L 127.0.0.1 -p "$port" -q libpq \
            --libpq-conninfo "host=127.0.0.1 port=$PGPORT user=postgres dbname=$db" \
            -b 1024 -t "$GEARBOXD_THREADS" ${cluster[@]+"${cluster[@]}"} \
            >"$OUT/$config.r$round.m$i.log" 2>&1 &
        PIDS+=($!)
        PORTS+=("$port")
        wait_port "$port"
    done
    DB=$db
    if [ "$config" != single ]; then
        # Every member sees the others (the member list is read every poll, 1 s by default)
        # and has opened its bridges before the first job.
        for _ in $(seq 1 100); do
            [ "$(psql -d "$DB" -c "SELECT count(*) FROM gearbox_jobs_members" 2>/dev/null)" = "$k" ] && break
            sleep 0.1
        done
        sleep 2
    fi
}

# bench PORT NAME ARGS... &: `gearbox bench ARGS --json` against the member on PORT, into
# NAME.json; always run in the background (exec: $! is then the process that a kill ends).
bench() {
    local port=$1 name=$2; shift 2
    exec timeout 600 "$GEARBOX" -s "127.0.0.1:$port" bench "$@" --json >"$OUT/$name.json" \
        2>"$OUT/$name.err"
}

queued() { psql -d "$DB" -c "SELECT count(*) FROM gearbox_jobs"; }

# pgstat: "transactions rows" committed and read (tup_returned + tup_fetched) so far in $DB,
# after a pause: a busy backend reports its counters at most once a second.
pgstat() {
    sleep 1.1
    psql -F ' ' -c "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched
                    FROM pg_stat_database WHERE datname = '$DB'"
}
# record_pg CONFIG ROUND SCENARIO PHASE JOBS "BEFORE" "AFTER": database work per job.
record_pg() {
    local b a
    read -r -a b <<<"$6"; read -r -a a <<<"$7"
    record "$1" "$2" "$3" "${4}PG transactions/job" \
        "$(python3 -c 'import sys; b, a, n = map(float, sys.argv[1:]); print(f"{(a - b) / n:.3f}")' "${b[0]}" "${a[0]}" "$5")"
    record "$1" "$2" "$3" "${4}PG rows read/job" \
        "$(python3 -c 'import sys; b, a, n = map(float, sys.argv[1:]); print(f"{(a - b) / n:.1f}")' "${b[1]}" "${a[1]}" "$5")"
}

# scenario_bg CONFIG ROUND
scenario_bg() {
    local config=$1 round=$2 k=${#PIDS[@]} f="bg.$1.r$2" s="$1.r$2.bg" i pids=() ok=1
    local c0 c1 c2 t0 t1 t2 left x0 x1 x2
    x0=$(pgstat)
    c0=$(cpu); t0=$(now)
    for i in $(seq 1 "$k"); do
        bench "${PORTS[i-1]}" "$s-submit.m$i" bg --mode pipelined --depth "$DEPTH" \
            -c $((CLIENTS / k)) -n $((BG_JOBS / k)) --no-drain --function "$f" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    t1=$(now); c1=$(cpu)
    local total=$((BG_JOBS / k * k))
    left=$(queued)
    [ "$left" = "$total" ] || echo "  $s: $left rows in the table after submitting $total" >&2
    [ "$ok" = 1 ] || { echo "  $s: a submitter failed (see $OUT/$s-submit.m*.err)" >&2; return 0; }
    record "$config" "$round" bg "submit jobs/s" "$(rate "$total" "$t0" "$t1")"
    record "$config" "$round" bg "submit server CPU us/job" "$(per_job "$total" "$c0" "$c1")"
    x1=$(pgstat)
    record_pg "$config" "$round" bg "submit " "$total" "$x0" "$x1"
    c1=$(cpu); t1=$(now)
    for i in $(seq 1 "$k"); do
        bench "${PORTS[i-1]}" "$s-drain.m$i" bg --mode pipelined --depth "$DEPTH" \
            -w $((WORKERS / k)) -n "$total" --no-submit --function "$f" &
        BG_PIDS+=($!)
    done
    local deadline=$(( $(date +%s) + DRAIN_TIMEOUT ))
    while left=$(queued) && [ "$left" != 0 ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "  $s: drain timed out, $left of $total jobs left" >&2
            record "$config" "$round" bg "drain timeouts" 1
            break
        fi
        sleep 0.05
    done
    t2=$(now); c2=$(cpu)
    x2=$(pgstat)
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    BG_PIDS=()
    if [ "$left" = 0 ]; then
        record "$config" "$round" bg "drain jobs/s" "$(rate "$total" "$t1" "$t2")"
        record "$config" "$round" bg "drain server CPU us/job" "$(per_job "$total" "$c1" "$c2")"
        record_pg "$config" "$round" bg "drain " "$total" "$x1" "$x2"
    fi
}

# scenario_fg CONFIG ROUND cross|spread
scenario_fg() {
    local config=$1 round=$2 how=$3 k=${#PIDS[@]} f="fg-$3.$1.r$2" s="$1.r$2.fg-$3" i
    local wk=() ck=() pids=() ok=1 c0 c1 t0 t1 x0 x1
    if [ "$how" = cross ]; then
        wk=("$k"); ck=(1)
    else
        mapfile -t wk < <(seq 1 "$k"); ck=("${wk[@]}")
    fi
    local per=$((FG_JOBS / ${#ck[@]})) total=$((FG_JOBS / ${#ck[@]} * ${#ck[@]}))
    for i in "${wk[@]}"; do
        # Echo workers that stop after $total jobs (never, when they are split: killed below).
        bench "${PORTS[i-1]}" "$s-workers.m$i" bg --mode classic -w $((WORKERS / ${#wk[@]})) \
            -n "$total" --no-submit --function "$f" &
        BG_PIDS+=($!)
    done
    # The workers register; the bridges register what they can do with the others.
    x0=$(pgstat)
    c0=$(cpu); t0=$(now)
    for i in "${ck[@]}"; do
        bench "${PORTS[i-1]}" "$s.m$i" fg --mode classic -c $((CLIENTS / ${#ck[@]})) -w 0 \
            -n "$per" --function "$f" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    t1=$(now); c1=$(cpu)
    x1=$(pgstat)
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    BG_PIDS=()
    [ "$ok" = 1 ] || { echo "  $s: a client failed (see $OUT/$s.m*.err)" >&2; return 0; }
    record "$config" "$round" "fg-$how" "jobs/s" "$(rate "$total" "$t0" "$t1")"
    record "$config" "$round" "fg-$how" "server CPU us/job" "$(per_job "$total" "$c0" "$c1")"
    record_pg "$config" "$round" "fg-$how" "" "$total" "$x0" "$x1"
    # Latency: the median over the client processes of each percentile.
    python3 - "$OUT" "$s" <<'PY' | while read -r metric value; do record "$config" "$round" "fg-$how" "$metric" "$value"; done || true
import glob, json, os, statistics, sys
out, s = sys.argv[1:]
lat = [json.load(open(p))[0]["latency"] for p in sorted(glob.glob(os.path.join(out, f"{s}.m*.json")))]
for key in ("p50_us", "p99_us"):
    print(f"latency_{key} {statistics.median(l[key] for l in lat)}")
PY
}

{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo),"\
         "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
    echo "gearbox: $("$GEARBOXD" --version 2>&1 | head -1), -t $GEARBOXD_THREADS; $("$PG_BIN/postgres" --version)," \
         "fsync=off, synchronous_commit=$SYNC_COMMIT"
    echo "rounds: $ROUNDS, bg jobs: $BG_JOBS, fg jobs: $FG_JOBS, clients: $CLIENTS, workers: $WORKERS," \
         "depth: $DEPTH, configs: ${CONFIGS[*]}"
} | tee "$OUT/machine.txt" >&2

: >"$OUT/results.tsv"
nc=${#CONFIGS[@]}
for r in $(seq 1 "$ROUNDS"); do
    shift_by=$(( (r - 1) % nc ))
    order=("${CONFIGS[@]:$shift_by}" "${CONFIGS[@]:0:$shift_by}")
    for config in "${order[@]}"; do
        echo "round $r/$ROUNDS: $config" >&2
        start "$config" "$r"
        scenario_bg "$config" "$r"
        scenario_fg "$config" "$r" cross
        scenario_fg "$config" "$r" spread
        stop_members
        psql -c "DROP DATABASE ${config//-/_}_r$r" || true
    done
done

grep -h -E ' (WARN|ERROR) ' "$OUT"/*.m*.log >"$OUT/warnings.txt" 2>/dev/null || true
[ -s "$OUT/warnings.txt" ] && echo "server warnings/errors: $(wc -l <"$OUT/warnings.txt") lines in $OUT/warnings.txt" >&2

python3 - "$OUT" "${CONFIGS[@]}" <<'PY'
import collections, json, os, statistics, sys
out, configs = sys.argv[1], sys.argv[2:]
vals = collections.defaultdict(list)
order = []
for line in open(os.path.join(out, "results.tsv")):
    config, rnd, scenario, metric, value = line.rstrip("\n").split("\t")
    key = f"{scenario} {metric}"
    if key not in order:
        order.append(key)
    vals[(key, config)].append(float(value))
rows = []
for key in order:
    rows.append({"metric": key, **{c: (statistics.median(vals[(key, c)]) if vals[(key, c)] else None)
                                   for c in configs},
                 "n": {c: len(vals[(key, c)]) for c in configs}})
w = max(len(r["metric"]) for r in rows)
print(f"{'METRIC':<{w}}  " + "  ".join(f"{c.upper():>20}" for c in configs))
for r in rows:
    cells = []
    for c in configs:
        v, base = r[c], r.get("single")
        if v is None:
            cells.append(f"{'-':>20}")
        elif c == "single" or not base:
            cells.append(f"{v:>20.{3 if v < 10 else 1}f}")
        else:
            cells.append(f"{f'{v:.1f} ({v / base:.2f}x)':>20}")
    print(f"{r['metric']:<{w}}  " + "  ".join(cells))
json.dump(rows, open(os.path.join(out, "summary.json"), "w"), indent=2)
PY
echo "raw results: $OUT" >&2
