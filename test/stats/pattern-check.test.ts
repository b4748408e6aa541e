/** `interlock validate` on a carbon output's name pattern: every problem at once, at `outputs[i].pattern`. */
import { describe, expect, it } from 'vitest';
import { checkConfig } from '../../src/config/check.ts';
import { type ConfigInput, configSchema } from '../../src/config/schema.ts';

function check(output: Record<string, unknown>, cluster: Record<string, unknown> = {}) {
  const config = configSchema.parse({
    clusters: { local: cluster },
    outputs: [{ kind: 'carbon', address: 'graphite:2003', ...output }],
  } as ConfigInput);
  return checkConfig(config, {
    configDir: '/',
    displayFile: 'interlock.config.yaml',
    exists: () => true,
    locate: () => undefined,
  })
    .filter((d) => d.path === 'outputs[0].pattern')
    .map((d) => `${d.severity} ${d.code}: ${d.message}`);
}

describe('carbon pattern check', () => {
  it('accepts the documented placeholders', () => {
    expect(check({ pattern: 'docker.{cluster}.{service}.{node}.{task}.{metric}' })).toEqual([]);
    expect(check({ pattern: '{prefix}.{metric}', tags: true })).toEqual([]);
  });

  it('reports every problem of a pattern in one run', () => {
    expect(check({ pattern: 'stats.{cluster}.{svc}.{metric} x' })).toEqual([
      'error bad-pattern: metric name pattern: unknown placeholder {svc}: use {prefix} {cluster} {service} {task} {node} {metric}',
      'error bad-pattern: metric name pattern: " ": only letters, digits, _ - and . are allowed outside placeholders',
      'error bad-pattern: metric name pattern: no {service}: all services would share one series',
      "error bad-pattern: metric name pattern: no {task}: a service's tasks would share one series with each other and with the service total",
    ]);
  });

  it('warns when per-node sums of a localOnly cluster would share one series', () => {
    expect(check({ pattern: '{prefix}.{cluster}.{service}.{task}.{metric}' }, { localOnly: true })).toEqual([
      'warning pattern-no-node: no {node} while cluster "local" is localOnly: every node\'s service sums would overwrite each other in one series',
    ]);
    // In tag mode the node is a tag.
    expect(check({ pattern: '{prefix}.{metric}', tags: true }, { localOnly: true })).toEqual([]);
  });
});
