#!/usr/bin/env bash
# The test command: real peers first, the viewer build the e2e tests serve, then tap. When tap
# fails, its failed assertions are listed once more at the very end, where a CI log is read.
set -uo pipefail
cd "$(dirname "$0")/.."
bash test/setup-peers.sh || exit 1
npm run build:viewer || exit 1
tap "$@"
status=$?
[[ $status -ne 0 ]] && node test/failure-summary.mjs
exit $status
