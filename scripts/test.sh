#!/usr/bin/env bash
# `make test`'s test run: the outage faults (vitest project `outages`, mostly waiting on timers)
# in a vitest process of their own beside every other file (project `suite`); their report is
# printed when the suite ends, and the closing line counts both. Exits non-zero when either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
VITEST=node_modules/.bin/vitest
rm -f .test-results*.json
# the labs run the product from the bundle, as the images do (the API server and the emulators
# stay sources): built here, so it is the code under test; a plain `vitest run` runs sources
node --disable-warning=ExperimentalWarning scripts/bundle.ts || exit 1
export CHORUS_TEST_COMPONENTS=bundle
"$VITEST" run --project outages --reporter=default --reporter=json --outputFile=.test-results-outages.json > .test-outages.log 2>&1 &
outages=$!
trap 'kill "$outages" 2>/dev/null' EXIT INT TERM
echo "test: the outage faults run beside the suite (their report follows it; progress in .test-outages.log)"
"$VITEST" run --project suite --reporter=default --reporter=json --outputFile=.test-results.json
suite_rc=$?
wait "$outages"
outages_rc=$?
trap - EXIT INT TERM
echo
echo "---- project outages (ran beside the suite) ----"
cat .test-outages.log
node scripts/test-summary.ts .test-results.json .test-results-outages.json || exit 1
[ "$suite_rc" -eq 0 ] && [ "$outages_rc" -eq 0 ]
