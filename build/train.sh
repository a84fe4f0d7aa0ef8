#!/usr/bin/env bash
# The main job: trains the Fashion-MNIST models and prints accuracy, parameter counts and time.
# Extra arguments go to the sample (e.g. --model lenet --epochs 5 --seed 2).
set -euo pipefail
cd "$(dirname "$0")/.."
build/setup.sh
echo "Building samples/FashionMnist and the package (Release) ..." >&2
dotnet build samples/FashionMnist -c Release -v q --nologo -clp:"ErrorsOnly;NoSummary" >&2
dotnet run -c Release --no-build --project samples/FashionMnist -- "$@"
