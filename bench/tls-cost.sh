#!/usr/bin/env bash
# Throughput over TLS next to plain TCP (issue 13): the same `gearbox bench` load against
# gearboxd's plain port, its TLS port and its TLS port with client certificates (mutual TLS).
#
#   bench/tls-cost.sh                       # 5 rounds
#   ROUNDS=3 JOBS=20000 bench/tls-cost.sh
#   BASE_GEARBOXD=/path/to/older/gearboxd bench/tls-cost.sh   # also an older build, plain
#
# Each round starts one fresh gearboxd per configuration, in an order that rotates:
#   plain   no TLS;
#   tls     --ssl (server certificate only);
#   mtls    --ssl --ssl-ca-file (every client and worker presents a certificate);
#   plain2  plain again: the noise floor (how far two identical runs differ here);
#   base    (only with BASE_GEARBOXD) that binary, plain: whether the plain path got slower.
# Scenarios: fg classic (one job in flight per connection, as libgearman), fg pipelined and bg
# pipelined (submit, then drain). Certificates are ECDSA P-256, made with openssl in $OUT. The
# summary prints the median of the rounds and each configuration's ratio to plain.
#
# Environment: ROUNDS (5), JOBS (40000, fg classic), PIPELINED_JOBS (10 x JOBS), CLIENTS (16), WORKERS (4), DEPTH (32),
# GEARBOXD_THREADS (1), BASE_GEARBOXD (unset), CONFIGS ("plain tls mtls plain2"; plain must be
# one of them), OUT (a new temp dir).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
JOBS=${JOBS:-40000}
PIPELINED_JOBS=${PIPELINED_JOBS:-$((JOBS * 10))}
CLIENTS=${CLIENTS:-16}
WORKERS=${WORKERS:-4}
DEPTH=${DEPTH:-32}
GEARBOXD_THREADS=${GEARBOXD_THREADS:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/gearbox-tls-cost.XXXXXX)}
mkdir -p "$OUT"
# free_port, wait_port, build_gearbox
. "$ROOT/bench/lib.sh"

build_gearbox

# A CA, a server certificate for 127.0.0.1 and a client certificate.
pki() {
    local d=$OUT/pki
    mkdir -p "$d"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
        -subj "/CN=bench CA" 2>/dev/null
    for who in server client; do
        openssl req "${ec[@]}" -keyout "$d/$who.key" -out "$d/$who.csr" \
            -subj "/CN=$who.bench" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:%s.bench\nbasicConstraints=CA:FALSE\n' "$who" \
            >"$d/$who.ext"
        openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -days 2 -extfile "$d/$who.ext" -out "$d/$who.pem" 2>/dev/null
    done
}
pki
P=$OUT/pki

PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# start CONFIG: a fresh server for CONFIG; sets PID, PORT and CLIENT_FLAGS.
start() {
    PORT=$(free_port)
    local bin=$GEARBOXD
    local args=(-L 127.0.0.1 -p "$PORT" -q builtin -b 1024 -t "$GEARBOXD_THREADS")
    CLIENT_FLAGS=()
    case $1 in
        tls)
            args+=(--ssl --ssl-certificate "$P/server.pem" --ssl-key "$P/server.key")
            CLIENT_FLAGS=(--ssl --ssl-ca-file "$P/ca.pem") ;;
        mtls)
            args+=(--ssl --ssl-certificate "$P/server.pem" --ssl-key "$P/server.key"
                   --ssl-ca-file "$P/ca.pem")
            CLIENT_FLAGS=(--ssl --ssl-ca-file "$P/ca.pem" --ssl-certificate "$P/client.pem"
                          --ssl-key "$P/client.key") ;;
        base) bin=$BASE_GEARBOXD ;;
    esac
    "$bin" "${args[@]}" >"$OUT/$1-$PORT.log" 2>&1 &
    PID=$!
    wait_port "$PORT"
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

# bench NAME ARGS...: `gearbox bench ARGS` against the current server into NAME.json.
bench() {
    local name=$1; shift
    "$GEARBOX" -s "127.0.0.1:$PORT" ${CLIENT_FLAGS[@]+"${CLIENT_FLAGS[@]}"} bench "$@" \
        --server-pid "$PID" --json >"$OUT/$name.json"
}

read -r -a CONFIGS <<<"${CONFIGS:-plain tls mtls plain2}"
[ -n "${BASE_GEARBOXD:-}" ] && CONFIGS+=(base)
{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
    echo "gearbox: $("$GEARBOXD" --version 2>&1 | head -1), -t $GEARBOXD_THREADS"
    echo "rounds: $ROUNDS, jobs: $JOBS (pipelined $PIPELINED_JOBS), clients: $CLIENTS, workers: $WORKERS, depth: $DEPTH, configs: ${CONFIGS[*]}"
} | tee "$OUT/machine.txt" >&2

n=${#CONFIGS[@]}
for r in $(seq 1 "$ROUNDS"); do
    shift_by=$(( (r - 1) % n ))
    order=("${CONFIGS[@]:$shift_by}" "${CONFIGS[@]:0:$shift_by}")
    for config in "${order[@]}"; do
        echo "round $r/$ROUNDS: $config" >&2
        start "$config"
        bench "$config.r$r.fgc" fg --mode classic -c "$CLIENTS" -w "$WORKERS" -n "$JOBS"
        bench "$config.r$r.fgp" fg --mode pipelined --depth "$DEPTH" -c "$CLIENTS" -w "$WORKERS" -n "$PIPELINED_JOBS"
        bench "$config.r$r.bgp" bg --mode pipelined --depth "$DEPTH" -c "$CLIENTS" -w "$WORKERS" -n "$PIPELINED_JOBS"
        stop
    done
done

python3 - "$OUT" "${CONFIGS[@]}" <<'PY'
import glob, json, os, statistics, sys
out, configs = sys.argv[1], sys.argv[2:]
def phases(config, scenario):
    found = []
    for path in sorted(glob.glob(os.path.join(out, f"{config}.r*.{scenario}.json"))):
        text = open(path).read().strip()
        if text:
            found.extend(json.loads(text))
    return found
def median(config, scenario, phase, key):
    v = [p.get(key) for p in phases(config, scenario) if p["phase"] == phase]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
rows = []
for scenario, phase, label in (("fgc", "fg", "fg classic"), ("fgp", "fg", "fg pipelined"),
                               ("bgp", "bg-submit", "bg pipelined submit"),
                               ("bgp", "bg-drain", "bg pipelined drain")):
    for key, unit in (("jobs_per_sec", "jobs/s"), ("server_cpu_us_per_job", "server CPU us/job")):
        m = {c: median(c, scenario, phase, key) for c in configs}
        if None in m.values():
            continue
        rows.append({"metric": f"{label} {unit}", **m})
w = max(len(r["metric"]) for r in rows)
others = [c for c in configs if c != "plain"]
print(f"{'METRIC':<{w}}  {'PLAIN':>10}  " + "  ".join(f"{c.upper() + '/PLAIN':>12}" for c in others))
for r in rows:
    print(f"{r['metric']:<{w}}  {r['plain']:>10.1f}  " +
          "  ".join(f"{r[c] / r['plain']:>11.3f}x" for c in others))
json.dump(rows, open(os.path.join(out, "summary.json"), "w"), indent=2)
PY
echo "raw results: $OUT" >&2
