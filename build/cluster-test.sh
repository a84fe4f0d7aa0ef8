#!/usr/bin/env bash
# The cluster's script test, with real processes on the loopback address: redis-server, two workers and a coordinator
# (mlnet-sparsity sweep --cluster redis://…). The coordinator is killed (-9) mid-sweep and started again, and one worker
# is killed (-9) mid-trial. The sweep must complete, with every trial in the journal exactly once (read from Redis), the
# killed worker's trial run again by the other, and the same command run a third time must find every trial finished
# and print the same trials. Prints "cluster script test: passed" or the reason it failed (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
build/setup.sh
dotnet build src/Microsoft.ML.Sparsity.Cli -c Release -v quiet -nologo >&2
tool="$PWD/src/Microsoft.ML.Sparsity.Cli/bin/Release/net10.0/mlnet-sparsity"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
# The reason comes again after the logs: build/test.sh keeps only the last 40 lines (a CI run lost it once).
fail() { echo "cluster script test: FAILED: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -n 30 "$f"; done; echo "cluster script test: FAILED: $*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # FILE PATTERN SECONDS
  for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no \"$2\" in $(basename "$1") within $3 s"
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no > "$work/redis.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
cluster="redis://127.0.0.1:$redis_port"
worker() { # NAME
  "$tool" worker --cluster "$cluster" --address 127.0.0.1 --port "$(free_port)" --gateway-port "$(free_port)" > "$work/$1.log" 2>&1 & pids+=($!)
  eval "$1_pid=$!"
}
worker a; worker b
wait_for "$work/a.log" "Worker joined" 60; wait_for "$work/b.log" "Worker joined" 60

trials=10
# Random search: every trial trains all its epochs (seconds), so the worker is killed well inside one (successive
# halving's stops after one epoch could end before the kill; the in-process tests cover rungs on a cluster).
sweep=("$tool" sweep --data fashion-mnist --examples 6000 --methods dense,gmp,set --sparsities 0.9 --epochs 6 --tuner random
  --trials "$trials" --seed 5 --cluster "$cluster" --sweep-name script --output "$work/best.zip")

# 1. The coordinator is killed once two trials are finished, and started again.
"${sweep[@]}" > "$work/coordinator1.log" 2>&1 & coordinator=$!; pids+=($coordinator)
wait_for "$work/coordinator1.log" "\[2/$trials\]" 300
kill -9 "$coordinator"
"${sweep[@]}" > "$work/coordinator2.log" 2>&1 & coordinator=$!; pids+=($coordinator)

# 2. Worker b is killed mid-trial: just after it starts its next one.
started=$(grep -c "started" "$work/b.log" || true)
for _ in $(seq 3000); do [ "$(grep -c "started" "$work/b.log" || true)" -gt "$started" ] && break; sleep 0.1; done
victim=$(grep "started" "$work/b.log" | tail -n 1 | sed -E 's/.*trial ([0-9]+) started.*/\1/')
[ -n "$victim" ] || fail "worker b started no trial"
# Where that start is: b may have run the same trial before (one the killed coordinator had given it and never
# recorded, given again by the new one), and only what follows this start tells whether the kill was mid-trial.
victim_line=$(grep -n "trial $victim started" "$work/b.log" | tail -n 1 | cut -d: -f1)
a_lines=$(grep -c "" "$work/a.log")
kill -9 "$b_pid"
killed_at=$(date +%s.%N)
echo "killed worker b mid-trial $victim" >&2
for _ in $(seq 1200); do tail -n +"$((a_lines + 1))" "$work/a.log" | grep -q "trial $victim started" && break; sleep 0.05; done
echo "worker a started trial $victim again $(python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$killed_at") s after the kill" >&2

wait "$coordinator" || fail "the coordinator exited with $?"
grep -q "Saved '" "$work/coordinator2.log" || fail "the coordinator saved no model"
tail -n +"$victim_line" "$work/b.log" | grep -q "trial $victim completed\|trial $victim stopped" && fail "worker b finished trial $victim before it was killed; the test did not kill it mid-trial"
tail -n +"$((a_lines + 1))" "$work/a.log" | grep -q "trial $victim started" || fail "worker a did not run trial $victim after worker b was killed in it"

# 3. The journal in Redis: every trial exactly once, and a model for each completed one.
redis-cli -p "$redis_port" hget "ml-sparsity/state/sweepjournal/script/journal" data > "$work/journal.json"
python3 - "$work/journal.json" "$trials" <<'PY' || fail "the journal is wrong"
import json, sys
state = json.load(open(sys.argv[1]))
records = {k: v for k, v in state["Records"].items() if not k.startswith("$")}
indices = sorted(int(k) for k in records)
assert indices == list(range(int(sys.argv[2]))), f"journal indices {indices}"
records = {k: json.loads(v) for k, v in records.items()}  # each a trial record as a folder journal's file holds it
print(f"journal: {len(indices)} trials, each once; "
      f"{sum(r['status'] == 'Completed' for r in records.values())} completed, {sum(r['status'] == 'Stopped' for r in records.values())} stopped", file=sys.stderr)
PY
completed=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(1 for k,v in s["Records"].items() if not k.startswith("$") and json.loads(v)["status"]=="Completed"))' "$work/journal.json")
models=$(redis-cli -p "$redis_port" --scan --pattern "ml-sparsity/state/trialmodel/script/*" | wc -l)
[ "$models" -eq "$completed" ] || fail "$models models in the journal for $completed completed trials"

# 4. The same command again finds every trial finished and prints the same trials (latency aside, measured anew).
lines=$(grep -c "" "$work/a.log")
"${sweep[@]}" > "$work/coordinator3.log" 2>&1 || fail "the resumed coordinator exited with $?"
tail -n +"$((lines + 1))" "$work/a.log" | grep -q "started" && fail "the resumed sweep ran a trial again"
table() { grep -E '^\| [0-9]+ ' "$1" | cut -d'|' -f2-6; }
[ "$(table "$work/coordinator2.log")" = "$(table "$work/coordinator3.log")" ] || fail "the resumed sweep's trials differ"
[ "$(table "$work/coordinator3.log" | wc -l)" -eq "$trials" ] || fail "the table does not list $trials trials"
echo "cluster script test: passed ($trials trials; coordinator and worker b killed with -9 and recovered)"
