#!/usr/bin/env bash
# Side-by-side performance comparison of gearboxd and Debian's gearmand on this machine.
#
#   bench/compare.sh                 # 3 rounds, every scenario
#   ROUNDS=5 bench/compare.sh        # more rounds
#   SCENARIOS="fg bg" bench/compare.sh
#
# Each round starts a fresh server of each kind on a free loopback port and runs the same
# `gearbox bench` scenarios against it, alternating gearmand and gearbox, so both see the same
# machine conditions. The summary prints the median of the rounds for each metric, the ratio
# gearbox/gearmand and the target from docs/performance.md. Raw JSON stays in $OUT.
#
# gearmand is tuned as a careful operator would: --hashtable-buckets 1000003 (the default 991
# makes a million-job queue crawl), a listen backlog of 1024 (the default 32 drops SYNs when 64
# clients connect at once), no log file, and the I/O thread count that measured best on this
# machine (GEARMAND_THREADS, see docs/performance.md).
#
# Environment: ROUNDS (3), SCENARIOS (fg bg pipelined sweep memory durable), OUT (a new temp dir),
# GEARMAND (/usr/sbin/gearmand), GEARMAND_THREADS (1), GEARBOXD_THREADS (1),
# MEMORY_JOBS (1000000), SCALE (100: percent of the job counts), INSTALL=0 to never apt-get.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SCENARIOS=${SCENARIOS:-"fg bg pipelined sweep memory durable"}
GEARMAND=${GEARMAND:-/usr/sbin/gearmand}
GEARMAND_THREADS=${GEARMAND_THREADS:-1}
# Both servers get the thread count that measured best on a 2-core machine shared with the
# load generator: gearmand -t 1 (one I/O thread beside its processing thread; its default of 4
# is slower here) and gearboxd -t 1 (a single-threaded runtime).
GEARBOXD_THREADS=${GEARBOXD_THREADS:-1}
MEMORY_JOBS=${MEMORY_JOBS:-1000000}
SCALE=${SCALE:-100}   # percent of the default job counts (a quick check: SCALE=5)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/gearbox-compare.XXXXXX)}
mkdir -p "$OUT"

if [ ! -x "$GEARMAND" ]; then
    if [ "${INSTALL:-1}" = 1 ]; then
        echo "installing Debian's gearman-job-server" >&2
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq gearman-job-server >&2
    else
        echo "no gearmand at $GEARMAND (set GEARMAND, or INSTALL=1)" >&2; exit 1
    fi
fi

echo "building gearbox (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin gearbox --bin gearboxd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
GEARBOX=$TARGET/release/gearbox
GEARBOXD=$TARGET/release/gearboxd

PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# free_port, wait_port
. "$ROOT/bench/lib.sh"

# start KIND STORE: starts a fresh server (STORE = memory | sqlite) and sets PID and PORT.
start() {
    local kind=$1 store=$2
    PORT=$(free_port)
    local db="$OUT/$kind-$PORT.sqlite"
    case "$kind/$store" in
        gearmand/memory) args=(-q builtin) ;;
        gearmand/sqlite) args=(-q libsqlite3 --libsqlite3-db "$db") ;;
        gearbox/memory) args=(-q builtin) ;;
        gearbox/sqlite) args=(-q libsqlite3 --libsqlite3-db "$db" --durability fsync) ;;
    esac
    if [ "$kind" = gearmand ]; then
        "$GEARMAND" -L 127.0.0.1 -p "$PORT" "${args[@]}" --hashtable-buckets 1000003 \
            -b 1024 -t "$GEARMAND_THREADS" -l none >"$OUT/$kind-$PORT.log" 2>&1 &
    else
        "$GEARBOXD" -L 127.0.0.1 -p "$PORT" "${args[@]}" -b 1024 -t "$GEARBOXD_THREADS" \
            >"$OUT/$kind-$PORT.log" 2>&1 &
    fi
    PID=$!
    wait_port "$PORT"
}

# stop: ends the current server. gearmand -t 4 has been seen to abort with a double free at
# exit and then hang in its crash handler, so after 10 s it is killed outright.
stop() {
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}

n() { echo $(( $1 * SCALE / 100 > 0 ? $1 * SCALE / 100 : 1 )); }

# bench NAME ARGS...: runs `gearbox bench ARGS` against the current server into NAME.json.
bench() {
    local name=$1; shift
    "$GEARBOX" -s "127.0.0.1:$PORT" bench "$@" --server-pid "$PID" --json \
        >"$OUT/$name.json" 2>/dev/null
}

run_scenarios() { # KIND ROUND
    local kind=$1 r=$2 s="$1.r$2"
    for scenario in $SCENARIOS; do
        case $scenario in
        fg)
            start "$kind" memory
            bench "$s.fg1" fg -c 1 -w 1 -n "$(n 20000)"
            bench "$s.fg16" fg -c 16 -w 16 -n "$(n 60000)"
            bench "$s.fg64" fg -c 64 -w 16 -n "$(n 60000)"
            stop ;;
        bg)
            start "$kind" memory
            bench "$s.bg16" bg -c 16 -w 16 -n "$(n 100000)"
            stop ;;
        pipelined)
            start "$kind" memory
            bench "$s.pfg16" fg --mode pipelined -c 16 -w 4 --depth 32 -n "$(n 300000)"
            bench "$s.pbg16" bg --mode pipelined -c 16 -w 4 --depth 32 -n "$(n 300000)"
            stop ;;
        sweep)
            start "$kind" memory
            bench "$s.sweep" sweep -c 16 -w 4 -n "$(n 30000)" --priorities 1,8,1
            stop ;;
        memory)
            start "$kind" memory
            bench "$s.idle" fg -c 1 -w 1 -n "$(n 1)"
            bench "$s.mem" bg --mode pipelined -c 16 --depth 64 -n "$(n "$MEMORY_JOBS")" --no-drain
            stop ;;
        durable)
            start "$kind" sqlite
            if [ "$kind" = gearmand ]; then jobs=3000; else jobs=30000; fi
            bench "$s.dur16" bg -c 16 -w 16 -n "$(n $jobs)"
            stop ;;
        esac
    done
}

{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo),"\
         "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
    echo "gearmand: $("$GEARMAND" --version 2>&1 | grep -m1 gearmand | cut -d" " -f1-2), -t $GEARMAND_THREADS"
    echo "gearbox: $("$GEARBOXD" --version 2>&1 | head -1), -t $GEARBOXD_THREADS"
    echo "rounds: $ROUNDS, scenarios: $SCENARIOS"
} | tee "$OUT/machine.txt" >&2

for r in $(seq 1 "$ROUNDS"); do
    for kind in gearmand gearbox; do
        echo "round $r/$ROUNDS: $kind" >&2
        run_scenarios "$kind" "$r"
    done
done

python3 "$ROOT/bench/summarize.py" "$OUT"
echo "raw results: $OUT" >&2
