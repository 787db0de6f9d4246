#!/usr/bin/env bash
# A post-release step for your own pipeline (see .github/workflows/mc-postrelease.yml): runs a
# canary workflow on the appliance at MAESTRO_URL with MAESTRO_TOKEN (an operator of the
# canary tenant), saves its receipt and the appliance's public keys, and verifies the receipt
# offline with the maestro CLI, then again with public tools only
# (scripts/verify-receipt-without-maestro: openssl and python3).
#
#   scripts/verify_receipt.sh [WORKFLOW] [OUT_DIR]
#
# WORKFLOW defaults to golden/hello (the signed golden package), falling back to the embedded
# hello when the goldens are not installed. OUT_DIR (default: a temporary directory) keeps
# receipt.json, keys.json and appliance.pem for the evidence of your pipeline.
# MAESTRO (default: maestro on PATH) names the CLI. Exit 0 when the run succeeded and its
# receipt verifies both ways; otherwise the failing step's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
maestro=${MAESTRO:-maestro}
workflow=${1:-golden/hello}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
: "${MAESTRO_URL:?set MAESTRO_URL to the appliance, e.g. http://127.0.0.1:7070}"
: "${MAESTRO_TOKEN:?set MAESTRO_TOKEN to an operator token of the canary tenant}"

echo "-- canary run of $workflow on $MAESTRO_URL"
set +e
"$maestro" run -w "$workflow" --canary --receipt-out "$out/receipt.json"
status=$?
if [ "$status" -eq 5 ] && [ "$workflow" = golden/hello ]; then
  echo "golden/hello is not installed; running the embedded hello"
  "$maestro" run -w hello --canary --receipt-out "$out/receipt.json"
  status=$?
fi
set -e
[ "$status" -eq 0 ] || { echo "FAIL canary run (exit $status)" >&2; exit "$status"; }

echo "-- the appliance's public keys"
"$maestro" keys show --output json > "$out/keys.json"
"$maestro" keys show --pem > "$out/appliance.pem"

echo "-- verify offline with maestro"
"$maestro" verify-receipt "$out/receipt.json" --keys "$out/keys.json"

echo "-- verify with public tools only"
scripts/verify-receipt-without-maestro "$out/receipt.json" "$out/appliance.pem"
echo "receipt verified both ways; kept in $out"
