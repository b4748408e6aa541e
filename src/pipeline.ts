/**
 * config + cluster states → routes → rendered files, for every file output. Pure: templates and
 * paths come in as data; nothing here reads or writes files, talks to Docker or looks at a clock.
 * `render`, `validate --snapshot` and `watch` all go through it.
 */
import path from 'node:path';
import type { ClusterState } from './cluster/model.ts';
import type { Config, FileOutput, OutputConfig } from './config/schema.ts';
import type { Diagnostic } from './diagnostics.ts';
import { renderHaproxy } from './render/haproxy.ts';
import { renderNginx } from './render/nginx.ts';
import { buildRoutes } from './routes/build.ts';
import type { Route } from './routes/types.ts';

export interface TemplateTexts {
  /** Template override text per output index (already read by the caller). */
  byOutput: ReadonlyMap<number, string>;
}

export interface PlannedFile {
  /** Absolute destination path. */
  path: string;
  content: string;
}

export interface SkippedService {
  cluster: string;
  service: string;
  reason: string;
}

export interface PlannedOutput {
  index: number;
  /** `haproxy`, `nginx`, or the output's own name; repeated kinds get their index. */
  name: string;
  output: FileOutput;
  /** Files in write order: the main file last, so a watcher never sees a config naming a map not yet written. */
  files: PlannedFile[];
  routes: number;
  backends: number;
  skipped: SkippedService[];
  /** Services refused by a diagnostic (error) in the clusters this output reads. */
  refused: string[];
}

export interface Plan {
  outputs: PlannedOutput[];
  diagnostics: Diagnostic[];
}

export function outputName(outputs: readonly OutputConfig[], index: number): string {
  const output = outputs[index];
  if (!output) return `output ${index}`;
  if (output.name) return output.name;
  const sameKind = outputs.filter((o) => o.kind === output.kind).length;
  return sameKind > 1 ? `${output.kind}[${index}]` : output.kind;
}

export function isFileOutput(output: OutputConfig): output is FileOutput {
  return output.kind === 'haproxy' || output.kind === 'nginx';
}

/** Where an output's files go: next to `file` (resolved against the config folder), or under `outDir`. */
export function outputFile(output: FileOutput, configDir: string, outDir?: string): string {
  const resolved = path.resolve(configDir, output.file);
  return outDir ? path.join(path.resolve(outDir), path.basename(resolved)) : resolved;
}

export function planRender(
  config: Config,
  states: readonly ClusterState[],
  options: { configDir: string; outDir?: string; templates: TemplateTexts },
): Plan {
  const diagnostics: Diagnostic[] = [];
  const seen = new Set<string>();
  const builds = new Map<string, ReturnType<typeof buildRoutes>>();
  const outputs: PlannedOutput[] = [];

  config.outputs.forEach((output, index) => {
    if (!isFileOutput(output)) return;
    const wanted = output.clusters ?? Object.keys(config.clusters);
    const key = [...wanted].sort().join('\u0000');
    let built = builds.get(key);
    if (!built) {
      built = buildRoutes(
        states.filter((s) => wanted.includes(s.cluster)),
        config.rules,
      );
      builds.set(key, built);
      // The same service problem is reported once, however many outputs read its cluster.
      for (const d of built.diagnostics) {
        const id = JSON.stringify([d.severity, d.code, d.cluster, d.service, d.label, d.message]);
        if (!seen.has(id)) {
          seen.add(id);
          diagnostics.push(d);
        }
      }
    }
    const file = outputFile(output, options.configDir, options.outDir);
    const dir = path.dirname(file);
    const template = options.templates.byOutput.get(index);
    const absolute = withAbsolutePaths(output, options.configDir);
    const rendered =
      absolute.kind === 'haproxy'
        ? renderHaproxy(built.routes, absolute, template === undefined ? {} : { template })
        : renderNginx(built.routes, absolute, {
            ...(template === undefined ? {} : { template }),
            runDir: absolute.runDir ? path.resolve(options.configDir, absolute.runDir) : dir,
          });
    const files = rendered.map((f, i) => ({
      // The first rendered file is the output's own file; the others sit next to it.
      path: i === 0 ? file : path.join(dir, f.name),
      content: f.content,
    }));
    outputs.push({
      index,
      name: outputName(config.outputs, index),
      output,
      files: [...files.slice(1), ...files.slice(0, 1)],
      routes: built.routes.length,
      backends: countBackends(built.routes),
      skipped: built.skipped,
      refused: [
        ...new Set(
          built.diagnostics
            .filter((d) => d.severity === 'error' && d.service)
            .map((d) => `${d.cluster ? `${d.cluster}/` : ''}${d.service}`),
        ),
      ].sort(),
    });
  });
  return { outputs, diagnostics };
}

/**
 * Paths in a config are relative to the config file, but a proxy resolves them against its own
 * file or working directory: render them absolute.
 */
function withAbsolutePaths<O extends FileOutput>(output: O, configDir: string): O {
  const abs = (p: string) => path.resolve(configDir, p);
  const https = output.https
    ? {
        ...output.https,
        certDir: abs(output.https.certDir),
        ...(output.https.defaultCert ? { defaultCert: abs(output.https.defaultCert) } : {}),
      }
    : undefined;
  const copy: O = { ...output, ...(https ? { https } : {}) };
  if (copy.kind === 'haproxy' && copy.masterSocket) copy.masterSocket = abs(copy.masterSocket);
  return copy;
}

function countBackends(routes: readonly Route[]): number {
  const seen = new Set<string>();
  for (const r of routes) for (const b of r.backends) seen.add(`${r.cluster}/${r.service}/${b.address}:${b.port}`);
  return seen.size;
}
