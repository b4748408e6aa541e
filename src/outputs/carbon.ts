/**
 * The `carbon` output: container and service statistics pushed to Carbon (src/stats/ runs it).
 * Here: which outputs are carbon outputs, and what `validate` checks about one.
 */
import type { CarbonOutput, Config, OutputConfig } from '../config/schema.ts';
import { carbonIntervalMs } from '../config/settings.ts';
import { patternProblems } from '../stats/names.ts';
import { addressPort, error, type OutputKind, rule, warning } from './common.ts';

export function isCarbonOutput(output: OutputConfig): output is CarbonOutput {
  return output.kind === 'carbon';
}

/** The config's carbon outputs. */
export function carbonOutputs(config: Config): CarbonOutput[] {
  return config.outputs.filter(isCarbonOutput);
}

/** Carbon stores whole seconds. */
const wholeSeconds = rule<CarbonOutput>('whole seconds', (output) => {
  const interval = carbonIntervalMs(output).written;
  return interval < 1000
    ? [
        error(
          'interval-too-short',
          ['interval'],
          `carbon stores whole seconds: an interval of ${interval}ms puts several points in one slot and only the last survives`,
          'use at least "1s" (10s matches the usual retention)',
        ),
      ]
    : [];
});

/** The metric name pattern makes names Graphite can store, one series per node where sums are per node. */
const namePattern = rule<CarbonOutput>('name pattern', (output, { config }) => {
  if (output.pattern === undefined) return [];
  const found = patternProblems(output.pattern, { tags: output.tags }).map((problem) =>
    error(
      'bad-pattern',
      ['pattern'],
      `metric name pattern: ${problem}`,
      'e.g. "{prefix}.{cluster}.{service}.{node}.{task}.{metric}", or remove `pattern` for the documented default',
    ),
  );
  const local = (output.clusters ?? Object.keys(config.clusters)).filter((c) => config.clusters[c]?.localOnly === true);
  if (!output.tags && local.length > 0 && !output.pattern.includes('{node}')) {
    found.push(
      warning(
        'pattern-no-node',
        ['pattern'],
        `no {node} while ${local.map((c) => `cluster "${c}"`).join(', ')} is localOnly: every node's service sums would overwrite each other in one series`,
        'add {node} to the pattern (it is left out where it has no value)',
      ),
    );
  }
  return found;
});

/** A port in range, and the protocol its receiver speaks. */
const receiverPort = rule<CarbonOutput>('receiver port', (output) => {
  const found = addressPort(output.address);
  if ('text' in found)
    return [
      error(
        'port-range',
        ['address'],
        `port ${found.text} is outside 1–65535`,
        'carbon listens on 2003 (plaintext) or 2004 (pickle)',
      ),
    ];
  if (output.protocol === 'pickle' && found.port === 2003)
    return [
      warning(
        'protocol-port',
        ['protocol'],
        'pickle sent to port 2003, the plaintext receiver',
        'use port 2004 for pickle, or protocol "plaintext"',
      ),
    ];
  if (output.protocol === 'plaintext' && found.port === 2004)
    return [
      warning(
        'protocol-port',
        ['protocol'],
        'plaintext sent to port 2004, the pickle receiver',
        'use port 2003 for plaintext, or protocol "pickle"',
      ),
    ];
  return [];
});

export const carbon: OutputKind<CarbonOutput> = {
  kind: 'carbon',
  rules: [wholeSeconds, namePattern, receiverPort],
};
