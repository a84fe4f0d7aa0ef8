#!/usr/bin/env bash
# Lottery tickets on Fashion-MNIST (LeNet-300-100): iterative magnitude pruning with its controls (--experiment
# controls, the default), the reset targets compared (--experiment rewinding) or one timed 10-level run (--experiment
# timed). Writes lottery-tickets-<experiment>.csv/.json/.svg to --out (default ./lottery-tickets;
# give --out docs to refresh the published tables). Extra arguments go to the sample,
# e.g. --threads 1 --seeds 1,2 --epochs 6 --checkpoints /tmp/imp (a killed run started again resumes there).
set -euo pipefail
cd "$(dirname "$0")/.."
build/setup.sh
echo "Building samples/LotteryTicket and the package (Release) ..." >&2
dotnet build samples/LotteryTicket -c Release -v q --nologo -clp:"ErrorsOnly;NoSummary" >&2
dotnet run -c Release --no-build --project samples/LotteryTicket -- "$@"
