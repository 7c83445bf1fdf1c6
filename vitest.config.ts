import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/redis.ts', 'test/setup/cli-build.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests spawn processes and share one Redis, and spend much of their time waiting
    // on them: three files at a time keep 2 cores busy (two left them a third idle).
    maxWorkers: 3,
  },
});
