import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real dockerd services and proxies: give them room.
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // CLI and integration tests spawn processes; two cores.
    pool: 'forks',
    maxWorkers: 2,
  },
});
