#!/usr/bin/env bash
# Renders the docs' plot of test accuracy against density (docs/grow-and-prune.md) from the CSV that
# samples/FashionMnist writes with --csv: docs/grow-and-prune-lenet-ALLOCATION.svg and .png for each allocation the
# CSV holds (erk, uniform-half). Usage: build/plot.sh [CSV (default docs/grow-and-prune-lenet.csv)]
# The plot is drawn by ScottPlot, whose SkiaSharp reads fonts from /usr/share/fonts and names DejaVu Sans: Debian's
# fonts-dejavu-core, installed here if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
csv="${1:-docs/grow-and-prune-lenet.csv}"
[ -f "$csv" ] || { echo "build/plot.sh: no such file: $csv" >&2; exit 1; }
build/setup.sh fonts-dejavu-core
dotnet build samples/FashionMnist -c Release -v q -nologo >&2
rendered=0
for allocation in erk uniform-half; do
  cut -d, -f2,3 "$csv" | grep -v ',dense' | grep -q "^$allocation," || continue
  dotnet run --no-build -c Release --project samples/FashionMnist -- --plot "$csv" --allocation "$allocation" \
    --out "docs/grow-and-prune-lenet-$allocation.svg" --out "docs/grow-and-prune-lenet-$allocation.png"
  rendered=1
done
[ "$rendered" -eq 1 ] || { echo "build/plot.sh: $csv has no erk or uniform-half rows" >&2; exit 1; }
