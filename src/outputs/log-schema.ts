/**
 * The `log` output's part of the config schema. The config schema (src/config/schema.ts) hands in
 * the shared parts.
 */
import { z } from 'zod';
import type { OutputSchemaParts } from '../config/schema.ts';

export function logOutputSchema({ common, clusterNames }: OutputSchemaParts) {
  return z
    .strictObject({
      kind: z.literal('log'),
      name: common.name,
      clusters: clusterNames,
    })
    .describe('Prints each cluster event and each applied change.');
}
