/**
 * The options `render` and `validate` share. Apart from render.ts so that `validate` without
 * --snapshot loads no render, apply or Docker code (issue 12, start-up).
 */
import type { Argv } from 'yargs';
import { type CommonOptions, commonOptions } from './options.ts';

export interface RenderOptions extends CommonOptions {
  snapshot?: string[];
  dryRun?: boolean;
  check?: boolean;
  outDir?: string;
  strict?: boolean;
}

export function renderOptions<T>(y: Argv<T>) {
  return commonOptions(y)
    .option('snapshot', {
      alias: 's',
      type: 'string',
      array: true,
      describe:
        'Render from a snapshot file instead of the live clusters; NAME=FILE picks the cluster (repeat per cluster)',
    })
    .option('out-dir', {
      alias: 'o',
      type: 'string',
      describe: 'Write every output under DIR (by file name) instead of where the config says',
    });
}
