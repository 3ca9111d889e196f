// Prints vitest's JSON reports (one per vitest process of the run) as one plain closing line:
// "tests: N passed, N failed, N skipped".
import { readFileSync } from 'node:fs';

interface VitestJson { numPassedTests: number; numFailedTests: number; numPendingTests?: number; numTodoTests?: number }

const files = process.argv.length > 2 ? process.argv.slice(2) : ['.test-results.json'];
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  try {
    const report = JSON.parse(readFileSync(file, 'utf8')) as VitestJson;
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  } catch (err) {
    console.error(`test-summary: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
