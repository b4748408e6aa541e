/**
 * The `carbon` output's part of the config schema. The config schema (src/config/schema.ts) hands
 * in the shared parts.
 */
import { z } from 'zod';
import type { OutputSchemaParts } from '../config/schema.ts';

export function carbonOutputSchema({ common, duration, clusterNames }: OutputSchemaParts) {
  return z
    .strictObject({
      kind: z.literal('carbon'),
      name: common.name,
      address: z
        .string()
        .regex(/^[^\s:]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, 'write HOST:PORT')
        .describe('carbon-cache address, HOST:PORT (2003 plaintext, 2004 pickle).'),
      prefix: z
        .string()
        .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a prefix is dotted words of [A-Za-z0-9_-]')
        .default('interlock'),
      interval: duration.default('10s'),
      protocol: z.enum(['plaintext', 'pickle']).default('plaintext'),
      tags: z.boolean().default(false).describe('Graphite tags (`name;cluster=…;service=…`), carbon 1.1+.'),
      pattern: z
        .string()
        .optional()
        .describe(
          'Metric name pattern, one for service and task series; placeholders {prefix} {cluster} {service} {task} {node} {metric}. ' +
            '{task} is the replica slot (the node id for a global service) and is empty, so left out, in service series; ' +
            '{node} is the Swarm node id: set in task series, and in service series only when the cluster is `localOnly` (per-node sums). ' +
            'Default: {prefix}.{cluster}.services.{service}.{node}.{metric} and {prefix}.{cluster}.tasks.{service}.{task}.{metric}.',
        ),
      clusters: clusterNames,
    })
    .describe('Container and service statistics pushed to Carbon (Graphite).');
}
