#!/usr/bin/env bash
# The main job: trains the Fashion-MNIST models and prints accuracy, parameter counts and time.
# Extra arguments go to the sample (e.g. --model lenet --epochs 5 --seed 2).
set -euo pipefail
cd "$(dirname "$0")/.."
build/setup.sh
dotnet run -c Release --project samples/FashionMnist -- "$@"
