import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // e2e suites build network namespaces and run real processes: run files one at a time so
    // two labs never compete for the two cores; unit files are fast anyway.
    fileParallelism: false,
    reporters: ['default'],
  },
});
