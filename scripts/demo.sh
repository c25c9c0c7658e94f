#!/usr/bin/env bash
# make demo: the strongest end-to-end path that exists today.
# The 3-site *federated* simulation arrives with the federation issue; until then
# the demo generates the phantom consortium, trains the harmonizer centrally on the
# pooled reference cases (the federation's upper bound), harmonizes the traveling
# subjects and prints a scorecard.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
BIN=.venv/bin
OUT="${DEMO_DIR:-demo-run}"

echo "== fedharmonize demo (centralized path; federated simulation comes with issue #4)"
echo "== 1/4 phantoms: 3 sites x 4 reference subjects + 2 traveling test subjects, 2 mm"
"$BIN/fedharmonize" phantoms "$OUT/phantoms" --force
echo "== 2/4 checking each site folder"
for site in "$OUT"/phantoms/sites/*/; do
  "$BIN/fedharmonize" site check "$site" | tail -n 1
done
echo "== 3/4 training the harmonizer on the pooled reference cases"
"$BIN/fedharmonize" train-local --sites-root "$OUT/phantoms/sites" --out "$OUT/run" --overwrite
echo "== 4/4 harmonizing the traveling subjects and scoring against the ground truth"
rm -rf "$OUT/run/harmonized"
"$BIN/python" -m simulations.scorecard --model "$OUT/run/model" --benchmark "$OUT/phantoms" \
  --out "$OUT/run/harmonized"
echo
echo "model:      $OUT/run/model"
echo "harmonized: $OUT/run/harmonized"
echo "preview:    $OUT/phantoms/preview.png"
