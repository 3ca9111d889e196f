import { defineConfig } from 'vitest/config';

/**
 * Two projects. `outages` (test/faults/outages.test.ts) spends most of its 2.5 minutes waiting: a
 * device down for the 2 minutes issue 13 asks for, an API server unreachable for 60 s. `make test`
 * (scripts/test.sh) runs it in a vitest process of its own beside `suite`, so the run waits for it
 * once instead of adding it to its length (vitest runs a project whose files go one at a time in a
 * group of its own, never beside another project). In `suite` files run one at a time, so two labs
 * never compete for the two cores. Each test file brings up its labs in a lab directory of its own
 * (test/support/lab.ts): the two processes never see each other's labs. A plain `vitest run` runs
 * both projects, one after the other.
 */
const OUTAGES = 'test/faults/outages.test.ts';

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'outages', include: [OUTAGES] } },
      { extends: true, test: { name: 'suite', include: ['test/**/*.test.ts'], exclude: [OUTAGES], fileParallelism: false } },
    ],
  },
});
