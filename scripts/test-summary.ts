// Prints vitest's JSON report as one plain closing line: "tests: N passed, N failed, N skipped".
import { readFileSync } from 'node:fs';

interface VitestJson { numPassedTests: number; numFailedTests: number; numPendingTests?: number; numTodoTests?: number }

const file = process.argv[2] ?? '.test-results.json';
try {
  const report = JSON.parse(readFileSync(file, 'utf8')) as VitestJson;
  const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
} catch (err) {
  console.error(`test-summary: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
