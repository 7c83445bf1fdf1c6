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
    // Test files share their worker's module registry instead of importing src/ (and bullmq, the
    // AWS SDK...) afresh each: 51 files spent 53 s importing, 11 s this way (the suite went from
    // about 165 s to 120 s on 2 cores). Tests keep no module state of their own between files:
    // each uses its own queue prefix, folders and servers, and runInProcess restores the env.
    isolate: false,
  },
});
