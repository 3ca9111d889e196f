/**
 * `make bench`: runs the benchmark suites (BENCH=agent,... to pick) and prints their tables.
 * Benchmarks measure and record; they never fail the build on a number.
 */
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const SUITES: Record<string, string> = {
  dataplane: 'node join to first ping from the device, and packet loss over agent restarts (lab)',
  gateway: 'the Linux device programming 5,000 nodes into its namespace, batched vs one process per entry',
  scale: 'control plane at 1,000 and 5,000 nodes with the Citrix driver, against the older CNC behaviour',
  agent: 'agent footprint and repair latency (lab, real kernel VXLAN)',
  f5: 'the F5 driver at 1,000 nodes: initial sync, iControl requests, steady state, churn',
};

const wanted = (process.env.BENCH ?? Object.keys(SUITES).join(',')).split(',').map((s) => s.trim()).filter((s) => s !== '');
let failed = 0;
for (const suite of wanted) {
  if (!(suite in SUITES)) {
    console.error(`bench: unknown suite "${suite}" (known: ${Object.keys(SUITES).join(', ')})`);
    failed++;
    continue;
  }
  console.log(`\n== ${suite}: ${SUITES[suite] ?? ''}`);
  const r = await execa(process.execPath, ['--disable-warning=ExperimentalWarning', fileURLToPath(new URL(`./${suite}.ts`, import.meta.url))], { stdio: 'inherit', reject: false });
  if (r.exitCode !== 0) {
    console.error(`bench: suite ${suite} did not complete (exit ${String(r.exitCode)})`);
    failed++;
  }
}
await execa(process.execPath, ['--disable-warning=ExperimentalWarning', fileURLToPath(new URL('./report.ts', import.meta.url))], { stdio: 'inherit', reject: false });
process.exit(failed > 0 ? 1 : 0);
