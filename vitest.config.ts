import { defineConfig } from 'vitest/config';

// Two tiers: `unit` (pure and integration tests against real etcd/NATS started
// per file; files run in parallel) and `e2e` (whole processes and the kernel
// datapath; files run one at a time so they do not fight over 2 cores).
const serial = ['test/**/*.e2e.test.ts', 'test/**/*.privileged.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: serial,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: serial,
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
