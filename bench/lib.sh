# Shell helpers shared by the bench/ scripts (sourced, not run).

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # waits until 127.0.0.1:$1 accepts connections (10 s at most)
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2; return 1
}

build_gearbox() { # builds gearbox and gearboxd (release); sets GEARBOX and GEARBOXD
    echo "building gearbox (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin gearbox --bin gearboxd)
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    GEARBOX=$target/release/gearbox
    GEARBOXD=$target/release/gearboxd
}

low_port() { # a free loopback port below 32768, outside Linux's ephemeral range, so that no
             # client connection of the load itself can hold it
    python3 -c '
import random, socket
while True:
    p = random.randint(10000, 32767)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()'
}

pg_as_owner() { # sets AS, the prefix that runs PostgreSQL's tools as `postgres` when we are
                # root (initdb refuses root), and gives $OUT to that user
    AS=()
    if [ "$(id -u)" -eq 0 ]; then
        AS=(runuser -u postgres --)
        chown postgres "$OUT"
    fi
}
