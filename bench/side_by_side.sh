#!/usr/bin/env bash
# side_by_side.sh — annals against its peer, PostgreSQL 15 with a
# hash-chained JSONB table, on the same real-shaped audit events, in one
# sitting, rounds alternated (issue 17's "≥10x PostgreSQL in the same run").
#
# Each round runs, in alternating order:
#   - annals: `annals serve` on a fresh data directory (defaults, on disk),
#     ../shared/bench/annals_load.py posting EventLists to its webhook;
#     the server's CPU per event is read from /proc when the load ends;
#   - PostgreSQL: ../shared/bench/pg_baseline.sh with VARIANTS=chained RUNS=1
#     (it installs and starts its own cluster, and measures the disk bound
#     after its load, on the same filesystem).
# Then it prints every round and the medians.
#
# Usage (from the project root, after `make build`):
#   bench/side_by_side.sh
# Knobs (environment): ROUNDS=3 EVENTS=400000 CLIENTS=16 BATCH=400
#   ANNALS=build/annals SHARED=../shared BENCH_TMPDIR=/var/tmp (on disk, not
#   tmpfs) ANNALS_FLAGS="" (extra `serve` flags)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
ANNALS=${ANNALS:-$ROOT/build/annals}
ROUNDS=${ROUNDS:-3}
EVENTS=${EVENTS:-400000}
CLIENTS=${CLIENTS:-16}
BATCH=${BATCH:-400}
BENCH_TMPDIR=${BENCH_TMPDIR:-/var/tmp}
ANNALS_FLAGS=${ANNALS_FLAGS:-}
CORPUS=$SHARED/corpus/k8s-audit
PY=/usr/bin/python3

[ -x "$ANNALS" ] || { echo "no $ANNALS: run make build first" >&2; exit 1; }
[ -f "$SHARED/bench/pg_baseline.sh" ] || { echo "no $SHARED/bench/pg_baseline.sh" >&2; exit 1; }

WORK=$(mktemp -d "$BENCH_TMPDIR/side_by_side.XXXXXX")
SERVER=""
cleanup() {
  set +e
  if [ -n "$SERVER" ] && kill -0 "$SERVER" 2>/dev/null; then kill -KILL "$SERVER"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The CPU seconds (user + system) of process $1 and its threads, living and exited.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# One annals run: prints "events/s cpu_us_per_event p99_ms log_bytes_per_event".
# The CPU is the server's during the load (its index flushes and compactions
# and the segment compressor go on after it); the bytes are the log's records
# as written (before the background compression of sealed segments).
run_annals() {
  local round=$1 dir="$WORK/annals-$1" port
  port=$(free_port)
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  "$ANNALS" serve --data "$dir/data" --listen "127.0.0.1:$port" $ANNALS_FLAGS \
    >"$dir/server.log" 2>&1 &
  SERVER=$!
  local i
  for i in $(seq 1 200); do
    curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break
    sleep 0.1
  done
  local before after line
  before=$(cpu_seconds "$SERVER")
  line=$("$PY" "$SHARED/bench/annals_load.py" --url "http://127.0.0.1:$port" --corpus "$CORPUS" \
    --events "$EVENTS" --batch "$BATCH" --clients "$CLIENTS" --seed "$round")
  after=$(cpu_seconds "$SERVER")
  local written
  written=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '
    /^annals_log_plain_segment_bytes / || /^annals_log_compressed_segment_uncompressed_bytes / { b += $2 }
    /^annals_log_entries / { n = $2 }
    END { if (n > 0) printf "%.0f", b / n; else print "?" }')
  kill -TERM "$SERVER"
  wait "$SERVER" || true
  SERVER=""
  echo "$line" >"$dir/load.txt"
  # annals: N events in S s = R ev/s; batch p50 A ms p99 B ms; non-200 K
  echo "$line" | awk -v before="$before" -v after="$after" -v n="$EVENTS" -v w="$written" '{
    for (i = 1; i <= NF; i++) {
      if ($i == "ev/s;") r = $(i-1);
      if ($i == "p99") p = $(i+1);
      if ($i == "non-200") bad = $(i+1);
    }
    if (bad != 0) { print "annals answered non-200 to " bad " batches" > "/dev/stderr"; exit 1 }
    printf "%s %.2f %s %s\n", r, (after - before) * 1e6 / n, p, w }'
  rm -rf "$dir"
}

# One PostgreSQL run: prints "events/s p99_ms disk_MBps".
run_pg() {
  local round=$1 out="$WORK/pg-$1.txt"
  EVENTS=$EVENTS CLIENTS=$CLIENTS BATCH=$BATCH RUNS=1 VARIANTS=chained \
    BENCH_TMPDIR=$BENCH_TMPDIR OUT="$out" bash "$SHARED/bench/pg_baseline.sh" >/dev/null 2>&1 ||
    { cat "$out" >&2; return 1; }
  "$PY" - "$out" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
run = re.search(r"^run 1/1 chained: +\d+ events in +[\d.]+ s = +(\d+) ev/s; "
                r"batch p50 +[\d.]+ ms p99 +([\d.]+) ms", text, re.M)
disk = re.search(r"^disk: median (\d+) MB/s", text, re.M)
if not run or not disk:
    sys.exit("pg_baseline's output has no chained run or no disk bound")
print(run.group(1), run.group(2), disk.group(1))
EOF
}

echo "# annals against PostgreSQL 15 (hash-chained JSONB), alternated rounds"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load:    EVENTS=$EVENTS CLIENTS=$CLIENTS BATCH=$BATCH, real-shaped events from $CORPUS"
echo "annals:  $ANNALS ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), serve with its defaults $ANNALS_FLAGS"
echo
A=() P=()
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="annals pg"; else order="pg annals"; fi
  for who in $order; do
    if [ "$who" = annals ]; then
      A+=("$(run_annals "$round")")
      echo "round $round annals:     ${A[-1]}  (events/s, server CPU us/event, batch p99 ms, log B/event)"
    else
      P+=("$(run_pg "$round")")
      echo "round $round PostgreSQL: ${P[-1]}  (events/s, batch p99 ms, disk bound MB/s)"
    fi
  done
done
echo
"$PY" - "${A[@]}" -- "${P[@]}" <<'EOF'
import statistics, sys
args = sys.argv[1:]
cut = args.index("--")
a = [list(map(float, x.split())) for x in args[:cut]]
p = [list(map(float, x.split())) for x in args[cut + 1:]]
med = lambda xs: statistics.median(xs)
print("| round | annals events/s | annals CPU us/event | annals batch p99 ms | annals log MB/s | PostgreSQL events/s | PostgreSQL batch p99 ms | ratio | disk bound MB/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
rows = [(x[0], x[1], x[2], x[0] * x[3] / 1e6, y[0], y[1], x[0] / y[0], y[2]) for x, y in zip(a, p)]
fmt = "| %s | %.0f | %.2f | %.1f | %.0f | %.0f | %.1f | %.1fx | %.0f |"
for i, r in enumerate(rows, 1):
    print(fmt % ((i,) + r))
print(fmt % (("median",) + tuple(med([r[k] for r in rows]) for k in range(8))))
EOF
