#!/usr/bin/env bash
# make demo: a 3-site federated simulation on phantoms, ending in an evaluation against baselines.
# The HTML report with figures arrives with the evaluation issue.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
BIN=.venv/bin
OUT="${DEMO_DIR:-demo-run}"
START=$(date +%s)

rm -rf "$OUT"
echo "== 1/3 federated simulation: phantoms, round 0 (reference profiles), training rounds"
"$BIN/fedharmonize" simulate --out "$OUT" ${DEMO_ARGS:-}
echo "== 2/3 site check of one phantom site (what a hospital runs before joining)"
"$BIN/fedharmonize" site check "$OUT/phantoms/sites/site-b" | tail -n 1
echo "== 3/3 evaluation: the federated model against raw scans and classical baselines"
"$BIN/fedharmonize" evaluate --model "$OUT/model" --benchmark "$OUT/phantoms" \
  --out "$OUT/report"
echo
echo "demo finished in $(( $(date +%s) - START )) s"
echo "model:      $OUT/model"
echo "report:     $OUT/report/metrics.md (the HTML report with figures comes with the evaluation issue)"
echo "ledgers:    $OUT/ledger/  (what each site sent)"
echo "preview:    $OUT/phantoms/preview.png"
