#!/usr/bin/env bash
# Measures what running a trial on a cluster costs beyond training it (the harness's --only cluster), with the journal
# in the workers' memory (localhost clustering) and in Redis (a redis-server started here on a free loopback port).
# Usage: build/cluster-bench.sh [--rounds 7]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=7
[ "${1:-}" = "--rounds" ] && rounds="$2"
build/setup.sh
dotnet build test/Microsoft.ML.Sparsity.PerformanceTests -c Release -v quiet -nologo >&2
bench=(dotnet test/Microsoft.ML.Sparsity.PerformanceTests/bin/Release/net10.0/Microsoft.ML.Sparsity.PerformanceTests.dll --only cluster --rounds "$rounds")
"${bench[@]}" --cluster localhost
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no > /dev/null & redis=$!
trap 'kill "$redis" 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
echo
"${bench[@]}" --cluster "redis://127.0.0.1:$port"
