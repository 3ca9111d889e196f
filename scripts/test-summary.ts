// Prints vitest's JSON reports (one per vitest process of the run) as one plain closing line:
// "tests: N passed, N failed, N skipped", preceded by one line per failed test (file, name and the
// first line of its failure) so the tail of a CI log says what failed without the whole log.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface AssertionJson { fullName?: string; title: string; status: string; failureMessages?: string[] }
interface FileJson { name: string; status: string; message?: string; assertionResults?: AssertionJson[] }
interface VitestJson {
  numPassedTests: number; numFailedTests: number; numPendingTests?: number; numTodoTests?: number;
  testResults?: FileJson[];
}

const ANSI = /\u001b\[[0-9;]*m/g;
function firstLine(text: string | undefined): string {
  const line = (text ?? '').replace(ANSI, '').split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 240) ?? '';
  // vitest's JSON report carries no message for some failures (a test timeout): its placeholder says nothing
  return line.includes('STACK_TRACE_ERROR') ? 'no message in the JSON report (a test timeout reports so): see the output above' : line;
}

const files = process.argv.length > 2 ? process.argv.slice(2) : ['.test-results.json'];
let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];
for (const file of files) {
  try {
    const report = JSON.parse(readFileSync(file, 'utf8')) as VitestJson;
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    for (const result of report.testResults ?? []) {
      const where = relative(process.cwd(), result.name);
      const failedTests = (result.assertionResults ?? []).filter((a) => a.status === 'failed');
      for (const test of failedTests) failures.push(`FAILED ${where} > ${test.fullName ?? test.title}: ${firstLine(test.failureMessages?.[0])}`);
      if (failedTests.length === 0 && result.status === 'failed') failures.push(`FAILED ${where} (file): ${firstLine(result.message)}`);
    }
  } catch (err) {
    console.error(`test-summary: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
for (const line of failures) console.log(line);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
