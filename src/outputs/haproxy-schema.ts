/**
 * The `haproxy` output's part of the config schema: its own keys on top of those every file
 * output has (`common`). The config schema (src/config/schema.ts) hands in the shared parts.
 */
import { z } from 'zod';
import type { OutputSchemaParts } from '../config/schema.ts';

export function haproxyOutputSchema({ common, filePath, port, listenAddress }: OutputSchemaParts) {
  return z
    .strictObject({
      kind: z.literal('haproxy'),
      ...common,
      stats: z
        .strictObject({
          address: listenAddress.default('127.0.0.1'),
          port,
          path: z
            .string()
            .regex(/^\/[A-Za-z0-9._~/-]*$/)
            .default('/stats'),
        })
        .optional()
        .describe('HAProxy stats page.'),
      masterSocket: filePath.optional().describe('Stats socket with `expose-fd listeners`, for hitless reloads.'),
      maxconn: z.number().int().min(1).default(4096),
    })
    .describe('An HAProxy configuration file (and its host map, written next to it).');
}
