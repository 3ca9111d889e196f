#!/usr/bin/env bash
# `make test`'s test run: three vitest processes side by side (vitest.config.ts): the lab files
# (project `labs`, one at a time, printed as they run), every other file (project `suite`) and the
# outage faults (project `outages`, mostly waiting on timers). The reports of `suite` and `outages`
# are printed when the labs end, and the closing line counts all three. Exits non-zero when any fails.
set -uo pipefail
cd "$(dirname "$0")/.."
VITEST=node_modules/.bin/vitest
rm -f .test-results*.json
run_beside() { # project
  "$VITEST" run --project "$1" --reporter=default --reporter=json --outputFile=".test-results-$1.json" > ".test-$1.log" 2>&1
}
run_beside outages &
outages=$!
run_beside suite &
suite=$!
trap 'kill "$outages" "$suite" 2>/dev/null' EXIT INT TERM
echo "test: the lab files run here; every other file (project suite) and the outage faults run beside them (their reports follow; progress in .test-suite.log and .test-outages.log)"
"$VITEST" run --project labs --reporter=default --reporter=json --outputFile=.test-results-labs.json
labs_rc=$?
wait "$suite"
suite_rc=$?
wait "$outages"
outages_rc=$?
trap - EXIT INT TERM
for project in suite outages; do
  echo
  echo "---- project $project (ran beside the labs) ----"
  cat ".test-$project.log"
done
node scripts/test-summary.ts .test-results-labs.json .test-results-suite.json .test-results-outages.json || exit 1
[ "$labs_rc" -eq 0 ] && [ "$suite_rc" -eq 0 ] && [ "$outages_rc" -eq 0 ]
