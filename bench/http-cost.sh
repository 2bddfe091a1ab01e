#!/usr/bin/env bash
# The cost of the HTTP listener and its /metrics scrapes on the job path (issue 12's target: no
# measurable loss).
#
#   bench/http-cost.sh                  # 5 rounds
#   ROUNDS=3 JOBS=20000 bench/http-cost.sh
#
# Each round starts three fresh gearboxd servers in turn and runs the same `gearbox bench` load
# against each: "plain" (no HTTP listener), "scraped" (`-r http` and a scraper fetching /metrics
# every second during the load) and "plain2" (plain again: the noise floor, i.e. how far two
# identical configurations differ on this machine). Before the load, FUNCTIONS functions get
# one queued job each, so every scrape renders that many functions, as on a busy server. The
# summary prints the median of the rounds for each metric and the ratios scraped/plain and
# plain2/plain. Raw JSON stays in $OUT.
#
# Environment: ROUNDS (5), JOBS (60000 per phase), CLIENTS (16), WORKERS (16), FUNCTIONS (1000),
# SCRAPE_EVERY (1, seconds), GEARBOXD_THREADS (1), OUT (a new temp dir).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
JOBS=${JOBS:-60000}
CLIENTS=${CLIENTS:-16}
WORKERS=${WORKERS:-16}
FUNCTIONS=${FUNCTIONS:-1000}
SCRAPE_EVERY=${SCRAPE_EVERY:-1}
GEARBOXD_THREADS=${GEARBOXD_THREADS:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/gearbox-http-cost.XXXXXX)}
mkdir -p "$OUT"
# free_port, wait_port, build_gearbox
. "$ROOT/bench/lib.sh"

build_gearbox

PID=""
SCRAPER=""
cleanup() {
    [ -n "$SCRAPER" ] && kill "$SCRAPER" 2>/dev/null
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    wait 2>/dev/null || true
}
trap cleanup EXIT

# fill PORT N: N background jobs, one for each of N functions, in one pipelined write.
fill() {
    python3 - "$1" "$2" <<'PY'
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
SUBMIT_JOB_BG, JOB_CREATED = 18, 8
s = socket.create_connection(("127.0.0.1", port))
bodies = (f"idle_{i:05}\0\0x".encode() for i in range(n))
s.sendall(b"".join(b"\0REQ" + struct.pack(">II", SUBMIT_JOB_BG, len(b)) + b for b in bodies))
buf, seen = b"", 0
while seen < n:
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("server closed the connection while filling")
    buf += chunk
    while len(buf) >= 12:
        kind, size = struct.unpack(">II", buf[4:12])
        if len(buf) < 12 + size:
            break
        if kind != JOB_CREATED:
            sys.exit(f"fill: packet type {kind} instead of JOB_CREATED")
        buf, seen = buf[12 + size:], seen + 1
PY
}

# start CONFIG: starts a fresh server (plain, plain2 or scraped), sets PID and PORT, and for
# scraped starts the scraper (SCRAPER).
start() {
    PORT=$(free_port)
    local args=(-L 127.0.0.1 -p "$PORT" -q builtin -b 1024 -t "$GEARBOXD_THREADS")
    if [ "$1" = scraped ]; then
        HTTP_PORT=$(free_port)
        args+=(-r http --http-port "$HTTP_PORT")
    fi
    "$GEARBOXD" "${args[@]}" >"$OUT/$1-$PORT.log" 2>&1 &
    PID=$!
    wait_port "$PORT"
    fill "$PORT" "$FUNCTIONS"
    if [ "$1" = scraped ]; then
        wait_port "$HTTP_PORT"
        local url="http://127.0.0.1:$HTTP_PORT/metrics" log="$OUT/scrapes.log"
        (while :; do
            curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' "$url" >>"$log"
            sleep "$SCRAPE_EVERY"
        done) &
        SCRAPER=$!
    fi
}

stop() {
    if [ -n "$SCRAPER" ]; then kill "$SCRAPER"; wait "$SCRAPER" 2>/dev/null || true; SCRAPER=""; fi
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
}

# bench NAME ARGS...: runs `gearbox bench ARGS` against the current server into NAME.json.
bench() {
    local name=$1; shift
    "$GEARBOX" -s "127.0.0.1:$PORT" bench "$@" --server-pid "$PID" --json \
        >"$OUT/$name.json" 2>/dev/null
}

{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
    echo "gearbox: $("$GEARBOXD" --version 2>&1 | head -1), -t $GEARBOXD_THREADS"
    echo "rounds: $ROUNDS, jobs: $JOBS, clients: $CLIENTS, workers: $WORKERS, functions: $FUNCTIONS, scrape every ${SCRAPE_EVERY}s"
} | tee "$OUT/machine.txt" >&2

for r in $(seq 1 "$ROUNDS"); do
    # The order rotates, so no configuration always runs first or last in a round.
    configs=(plain scraped plain2)
    shift_by=$(( (r - 1) % 3 ))
    configs=("${configs[@]:$shift_by}" "${configs[@]:0:$shift_by}")
    for config in "${configs[@]}"; do
        echo "round $r/$ROUNDS: $config" >&2
        start "$config"
        bench "$config.r$r.fg" fg -c "$CLIENTS" -w "$WORKERS" -n "$JOBS"
        bench "$config.r$r.bg" bg -c "$CLIENTS" -w "$WORKERS" -n "$JOBS"
        stop
    done
done

python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
def runs(config, scenario):
    phases = []
    for path in sorted(glob.glob(os.path.join(out, f"{config}.r*.{scenario}.json"))):
        with open(path) as f:
            text = f.read().strip()
        if text:
            phases.extend(json.loads(text))
    return phases
def median(config, scenario, phase, key):
    values = [p.get(key) for p in runs(config, scenario) if p["phase"] == phase]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
rows = []
for scenario, phase in (("fg", "fg"), ("bg", "bg-submit"), ("bg", "bg-drain")):
    for key, label in (("jobs_per_sec", "jobs/s"), ("server_cpu_us_per_job", "server CPU us/job")):
        m = {c: median(c, scenario, phase, key) for c in ("plain", "scraped", "plain2")}
        if None in m.values():
            continue
        rows.append({"metric": f"{phase} {label}", **m,
                     "scraped/plain": m["scraped"] / m["plain"],
                     "plain2/plain": m["plain2"] / m["plain"]})
w = max(len(r["metric"]) for r in rows)
print(f"{'METRIC':<{w}}  {'PLAIN':>10}  {'SCRAPED':>10}  {'PLAIN2':>10}  {'SCR/PLAIN':>9}  {'NOISE':>6}")
for r in rows:
    print(f"{r['metric']:<{w}}  {r['plain']:>10.1f}  {r['scraped']:>10.1f}  {r['plain2']:>10.1f}"
          f"  {r['scraped/plain']:>8.3f}x  {r['plain2/plain']:>5.3f}x")
scrapes = os.path.join(out, "scrapes.log")
if os.path.exists(scrapes):
    lines = [l.split() for l in open(scrapes) if l.strip()]
    ok = [l for l in lines if l[0] == "200"]
    if ok:
        print(f"scrapes: {len(ok)} of {len(lines)} answered 200, median "
              f"{statistics.median(float(l[1]) for l in ok) / 1024:.0f} KiB in "
              f"{statistics.median(float(l[2]) for l in ok) * 1000:.1f} ms")
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(rows, f, indent=2)
PY
echo "raw results: $OUT" >&2
