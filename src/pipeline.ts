/**
 * config + cluster states → routes → rendered files, for every file output. Pure: templates and
 * paths come in as data; nothing here reads or writes files, talks to Docker or looks at a clock.
 * `render`, `validate --snapshot` and `watch` all go through it.
 */
import path from 'node:path';
import type { ClusterState } from './cluster/model.ts';
import type { Config, FileOutput, OutputConfig } from './config/schema.ts';
import type { Diagnostic } from './diagnostics.ts';
import { driverFor, isFileOutput } from './outputs/drivers.ts';
import type { AcmeRender, TemplateName } from './render/types.ts';
import { acmeHosts, acmeResponder } from './routes/acme.ts';
import { buildRoutes, gather, type RouteCache } from './routes/build.ts';
import type { PolicyFiles, Route } from './routes/types.ts';

export interface TemplateTexts {
  /** Template override text per output index (already read by the caller). */
  byOutput: ReadonlyMap<number, string>;
  /** The built-in templates' text (already read by the caller: the pipeline does no I/O). */
  builtIn: Readonly<Record<TemplateName, string>>;
}

export interface PlannedFile {
  /** Absolute destination path. */
  path: string;
  content: string;
  /** Holds secrets (password hashes): written 0640, never more open. */
  private?: true;
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
  /** The routes rendered into `files` (after `leftOut`). */
  routeList: readonly Route[];
  /** Folders the proxy opens when it checks the files (Nginx's run folder): created before a check. */
  runDirs?: readonly string[];
  /** `cluster/service` keys the caller asked to leave out of this output (see `rerender`). */
  leftOut: readonly string[];
  /** With an `acme` config: the hosts served with ACME certificates (they load no `<host>.pem`). */
  acmeHosts?: ReadonlySet<string>;
  /**
   * With an `acme` config: each ACME host's certificate file (absolute, under `acme.storage`) as
   * rendered, or null while none is issued. A served output carries these files to its agents.
   */
  acmeCertificates?: ReadonlyMap<string, string | null>;
  /**
   * The same output rendered again without the routes of the given `cluster/service` keys: how
   * the applier leaves out a service whose part the proxy rejected. Absent on hand-made plans.
   */
  rerender?: (leaveOut: ReadonlySet<string>) => PlannedOutput;
}

/** The key a service goes by across outputs and diagnostics: `cluster/service`. */
export function serviceKey(route: { cluster: string; service: string }): string {
  return `${route.cluster}/${route.service}`;
}

export interface Plan {
  outputs: PlannedOutput[];
  diagnostics: Diagnostic[];
  /** With an `acme` config: every host that wants an ACME certificate, sorted. */
  acmeHosts?: string[];
}

/** What the ACME issuer holds: host → absolute path of its certificate file (chain and key). */
export type IssuedCertificates = ReadonlyMap<string, string>;

export function outputName(outputs: readonly OutputConfig[], index: number): string {
  const output = outputs[index];
  if (!output) return `output ${index}`;
  if (output.name) return output.name;
  const sameKind = outputs.filter((o) => o.kind === output.kind).length;
  return sameKind > 1 ? `${output.kind}[${index}]` : output.kind;
}

export { isFileOutput } from './outputs/drivers.ts';

/** Where an output's files go: next to `file` (resolved against the config folder), or under `outDir`. */
export function outputFile(output: FileOutput, configDir: string, outDir?: string): string {
  const resolved = path.resolve(configDir, output.file);
  return outDir ? path.join(path.resolve(outDir), path.basename(resolved)) : resolved;
}

export function planRender(
  config: Config,
  states: readonly ClusterState[],
  options: {
    configDir: string;
    outDir?: string;
    templates: TemplateTexts;
    /** Per output index, `cluster/service` keys to leave out of that output. */
    leaveOut?: ReadonlyMap<number, ReadonlySet<string>>;
    /** With an `acme` config: the certificates issued so far (none: every ACME host waits for one). */
    acmeCertificates?: IssuedCertificates;
    /** The config's `policyFiles` folder, read by the caller (users files, error pages). */
    policyFiles?: PolicyFiles;
    /** Per-service routes kept between renders (watch): unchanged services are not resolved again. */
    routeCache?: RouteCache;
  },
): Plan {
  const diagnostics: Diagnostic[] = [];
  const seen = new Set<string>();
  const builds = new Map<string, ReturnType<typeof buildRoutes>>();
  const outputs: PlannedOutput[] = [];
  const wantAcme = new Set<string>();
  const acme = config.acme;

  config.outputs.forEach((output, index) => {
    if (!isFileOutput(output)) return;
    const wanted = output.clusters ?? Object.keys(config.clusters);
    const key = [...wanted].sort().join('\u0000');
    let built = builds.get(key);
    if (!built) {
      built = buildRoutes(
        states.filter((s) => wanted.includes(s.cluster)),
        config.rules,
        {
          ...(options.policyFiles ? { policyFiles: options.policyFiles } : {}),
          ...(options.routeCache ? { cache: options.routeCache } : {}),
        },
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
      if (acme) {
        const wanted = acmeHosts(built.routes, acme.hosts);
        for (const h of wanted.hosts) wantAcme.add(h);
        for (const d of wanted.diagnostics) {
          const id = JSON.stringify([d.severity, d.code, d.cluster, d.service, d.label, d.message]);
          if (!seen.has(id)) {
            seen.add(id);
            diagnostics.push(d);
          }
        }
      }
    }
    outputs.push(
      planOutput(config, index, built, {
        file: outputFile(output, options.configDir, options.outDir),
        configDir: options.configDir,
        template: options.templates.byOutput.get(index) ?? options.templates.builtIn[driverFor(output).template],
        leaveOut: options.leaveOut?.get(index),
        ...(options.acmeCertificates ? { acmeCertificates: options.acmeCertificates } : {}),
      }),
    );
  });
  return { outputs, diagnostics, ...(acme ? { acmeHosts: [...wantAcme].sort() } : {}) };
}

function planOutput(
  config: Config,
  index: number,
  built: ReturnType<typeof buildRoutes>,
  o: {
    file: string;
    configDir: string;
    template: string;
    leaveOut: ReadonlySet<string> | undefined;
    acmeCertificates?: IssuedCertificates;
  },
): PlannedOutput {
  const output = config.outputs[index] as FileOutput;
  const driver = driverFor(output);
  const leaveOut = o.leaveOut && o.leaveOut.size > 0 ? o.leaveOut : undefined;
  const routes = leaveOut ? built.routes.filter((r) => !leaveOut.has(serviceKey(r))) : built.routes;
  const dir = path.dirname(o.file);
  const runDir = driver.runDir(output, o.configDir);
  const acme = acmeRender(config, routes, o.acmeCertificates);
  const rendered = driver.render(routes, driver.absolute(output, o.configDir), {
    template: o.template,
    runDir,
    ...(acme ? { acme } : {}),
    dir,
  });
  const files = rendered.map((f, i) => ({
    // The first rendered file is the output's own file; the others sit next to it.
    path: i === 0 ? o.file : path.join(dir, f.name),
    content: f.content,
    ...(f.private ? { private: true as const } : {}),
  }));
  const leftOut = leaveOut ? [...leaveOut].filter((k) => built.routes.some((r) => serviceKey(r) === k)).sort() : [];
  return {
    index,
    name: outputName(config.outputs, index),
    output,
    files: [...files.slice(1), ...files.slice(0, 1)],
    routes: routes.length,
    backends: countBackends(routes),
    skipped: built.skipped,
    refused: [
      ...new Set([
        ...built.diagnostics
          .filter((d) => d.severity === 'error' && d.service)
          .map((d) => `${d.cluster ? `${d.cluster}/` : ''}${d.service}`),
        ...leftOut,
      ]),
    ].sort(),
    routeList: routes,
    runDirs: runDir ? [runDir] : [],
    leftOut,
    ...(acme ? { acmeHosts: new Set(acme.certificates.keys()), acmeCertificates: acme.certificates } : {}),
    rerender: (next) => planOutput(config, index, built, { ...o, leaveOut: next }),
  };
}

/** The ACME part of a render: the responder, and each wanted host's certificate (null until issued). */
function acmeRender(
  config: Config,
  routes: readonly Route[],
  issued: IssuedCertificates | undefined,
): AcmeRender | undefined {
  if (!config.acme) return undefined;
  const certificates = new Map<string, string | null>();
  for (const h of acmeHosts(routes, config.acme.hosts).hosts) certificates.set(h, issued?.get(h) ?? null);
  return { responder: acmeResponder(config.acme), certificates };
}

/**
 * Paths in a config are relative to the config file, but a proxy resolves them against its own
 * file or working directory: render them absolute (each driver knows its paths).
 */
export function withAbsolutePaths<O extends FileOutput>(output: O, configDir: string): O {
  return driverFor(output).absolute(output, configDir);
}

function countBackends(routes: readonly Route[]): number {
  // Most services have one route: its distinct backends are counted once per route object (the
  // watch daemon keeps unchanged services' routes from render to render). Grouped by cluster,
  // then service: no key string nor list per route.
  const perCluster = new Map<string, Map<string, Route | Route[]>>();
  for (const r of routes) {
    let services = perCluster.get(r.cluster);
    if (services === undefined) {
      services = new Map();
      perCluster.set(r.cluster, services);
    }
    gather(services, r.service, r);
  }
  let n = 0;
  for (const services of perCluster.values())
    for (const one of services.values()) {
      if (Array.isArray(one)) n += distinct(one.flatMap((r) => r.backends));
      else {
        const count = distinctCounts.get(one) ?? distinct(one.backends);
        distinctCounts.set(one, count);
        n += count;
      }
    }
  return n;
}

const distinctCounts = new WeakMap<Route, number>();
const distinct = (backends: readonly { address: string; port: number }[]) =>
  new Set(backends.map((b) => `${b.address}:${b.port}`)).size;
