#!/usr/bin/env bash
# make demo: a 3-site federated simulation on phantoms that ends in the evaluation report.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
BIN=.venv/bin
OUT="${DEMO_DIR:-demo-run}"
START=$(date +%s)

rm -rf "$OUT"
echo "== 1/2 site check of one phantom site (what a hospital runs before joining)"
"$BIN/fedharmonize" phantoms "$OUT/phantoms" --force > /dev/null
"$BIN/fedharmonize" site check "$OUT/phantoms/sites/site-b" | tail -n 1
echo "== 2/2 federated simulation: round 0 (reference profiles), training rounds, then the"
echo "       centralized model at the same budget, the classical baselines and the report"
"$BIN/fedharmonize" simulate --sites-root "$OUT/phantoms/sites" --out "$OUT" ${DEMO_ARGS:-}
echo
echo "demo finished in $(( $(date +%s) - START )) s"
echo "report:     $OUT/report/report.html   (open it in a browser; PNGs beside it)"
echo "metrics:    $OUT/report/metrics.md"
echo "model:      $OUT/model"
echo "ledgers:    $OUT/ledger/  (what each site sent)"
echo "preview:    $OUT/phantoms/preview.png"
