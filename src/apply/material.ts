/**
 * TLS material check before rendering: the certificate (and key) files each service's routes make
 * an output load must exist and hold a certificate with its matching private key. A service whose
 * material is missing or wrong is left out of that output alone, with a diagnostic naming
 * cluster, service, label and file; otherwise one service's files would make `haproxy -c` /
 * `nginx -t` reject the whole output, and every other service would wait on it.
 *
 * Which file a host loads is the renderers' rule (src/render/haproxy.ts, src/render/nginx.ts):
 * the certificate of the host's first route (canonical order) that names one (`ssl_cert`, with
 * `ssl_key` when the key is a separate file); without one, `https.defaultCert` when the output
 * has it (checked by `validate`, not here: it is the whole output's), else `<certDir>/<host>.pem`.
 * HAProxy 2.6 also needs a separate key to be named `NAME.key` for `NAME.crt`, or `FILE.key`.
 *
 * Files are read through a seam, and each pair's verdict is cached by path, mtime and size, so the
 * watch daemon stats the files every cycle but reads and parses them only when they change.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pemPairProblem } from '../config/pem.ts';
import type { FileOutput } from '../config/schema.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { driverFor, type OutputDriver } from '../outputs/drivers.ts';
import { type PlannedOutput, withAbsolutePaths } from '../pipeline.ts';
import { certificatePath, nameRoutes } from '../render/types.ts';
import type { Route } from '../routes/types.ts';
import type { MaterialCheck } from './apply.ts';

/** How the check reaches files. */
export interface MaterialFiles {
  /** mtime and size of a regular file; undefined when there is no such file (or not a regular file). */
  stat(path: string): Promise<{ mtimeMs: number; size: number } | undefined>;
  readText(path: string): Promise<string>;
}

export const nodeMaterialFiles: MaterialFiles = {
  async stat(p) {
    try {
      const s = await stat(p);
      return s.isFile() ? { mtimeMs: s.mtimeMs, size: s.size } : undefined;
    } catch {
      return undefined;
    }
  },
  readText: (p) => readFile(p, 'utf8'),
};

/** Verdicts per certificate/key pair, keyed by both files' path, mtime and size. */
export class MaterialCache {
  readonly #verdicts = new Map<string, string | undefined>();
  /** Bounded: a daemon running for months sees many versions of many files. */
  readonly #max: number;

  constructor(max = 4096) {
    this.#max = max;
  }

  get size(): number {
    return this.#verdicts.size;
  }

  get(key: string): { problem: string | undefined } | undefined {
    if (!this.#verdicts.has(key)) return undefined;
    return { problem: this.#verdicts.get(key) };
  }

  set(key: string, problem: string | undefined): void {
    if (this.#verdicts.size >= this.#max) this.#verdicts.clear();
    this.#verdicts.set(key, problem);
  }
}

const sharedCache = new MaterialCache();

type Field = 'sslCert' | 'sslKey' | 'hosts';

/** The label behind a route field, for the built-in dialects with their default prefixes. */
export function defaultLabelOf(route: Route, field: Field): string | undefined {
  const names: Record<string, Record<Field, string>> = {
    interlock: { sslCert: 'interlock.ssl_cert', sslKey: 'interlock.ssl_cert_key', hosts: 'interlock.hostname' },
    'docker-lb': { sslCert: 'com.docker.lb.ssl_cert', sslKey: 'com.docker.lb.ssl_key', hosts: 'com.docker.lb.hosts' },
  };
  return names[route.rule]?.[field];
}

export interface MaterialOptions {
  files?: MaterialFiles;
  /** Shared by default, so repeated calls (watch) read only what changed. */
  cache?: MaterialCache;
  /** The label a route field came from; default: the built-in dialects' default prefixes. */
  labelOf?: (route: Route, field: Field) => string | undefined;
  /** Hosts served with ACME certificates (or the default one until issued): they load no `<host>.pem`. */
  acmeHosts?: ReadonlySet<string>;
}

interface Need {
  /** The services that make the output load this pair (cluster/service → its route). */
  routes: Route[];
  cert: string;
  key?: string;
  /** Which field named the file(s): a route's own certificate, or the host name. */
  field: 'sslCert' | 'hosts';
  /** For `<host>.pem`: the host. */
  host?: string;
}

/** What each host loads, by the renderers' rule; keyed by certificate + key path. */
function needs(
  routes: readonly Route[],
  https: NonNullable<FileOutput['https']>,
  acmeHosts: ReadonlySet<string> | undefined,
): Map<string, Need> {
  const named = nameRoutes(routes).filter((n) => n.route.mode === 'http' && !n.route.sslPassthrough);
  const own = new Map<string, Route>();
  for (const { route } of named) {
    if (route.sslCert === undefined) continue;
    for (const h of route.hosts) if (!own.has(h)) own.set(h, route);
  }
  const out = new Map<string, Need>();
  const add = (need: Omit<Need, 'routes'>, route: Route) => {
    const id = `${need.cert}\u0000${need.key ?? ''}`;
    const existing = out.get(id);
    if (!existing) out.set(id, { ...need, routes: [route] });
    else if (!existing.routes.includes(route)) existing.routes.push(route);
  };
  for (const { route } of named) {
    for (const h of route.hosts) {
      const holder = own.get(h);
      if (holder?.sslCert !== undefined) {
        const key = holder.sslKey !== undefined && holder.sslKey !== holder.sslCert ? holder.sslKey : undefined;
        add(
          {
            cert: certificatePath(https.certDir, holder.sslCert),
            ...(key !== undefined ? { key: certificatePath(https.certDir, key) } : {}),
            field: 'sslCert',
          },
          holder,
        );
      } else if (https.defaultCert === undefined && !acmeHosts?.has(h)) {
        add({ cert: certificatePath(https.certDir, `${h}.pem`), field: 'hosts', host: h }, route);
      }
    }
  }
  return out;
}

function statKey(p: string, s: { mtimeMs: number; size: number }): string {
  return `${p}\u0000${s.mtimeMs}\u0000${s.size}`;
}

/**
 * Checks the TLS material of one output (its paths already absolute, see `withAbsolutePaths` in
 * src/pipeline.ts) for the routes it would render. Returns one error per service to leave out of
 * this output (code `tls-material`, with cluster, service and label); an output without `https`
 * has none. Leaving a service out can change which file another route of the same host loads, so
 * the check repeats on the remaining routes until nothing more is left out.
 */
export async function checkTlsMaterial(
  output: FileOutput,
  routes: readonly Route[],
  options: MaterialOptions = {},
): Promise<Diagnostic[]> {
  const https = output.https;
  if (!https) return [];
  const files = options.files ?? nodeMaterialFiles;
  const cache = options.cache ?? sharedCache;
  const labelOf = options.labelOf ?? defaultLabelOf;
  const diagnostics: Diagnostic[] = [];
  const refused = new Set<string>();
  const id = (r: Route) => `${r.cluster}\u0000${r.service}`;
  // A served output's agents write only under their folder (the output's, rebased): a file
  // elsewhere cannot reach them, so the service naming it is left out (issue 11).
  const servedRoot = output.serve === true ? path.dirname(output.file) : undefined;
  let remaining = routes;
  for (;;) {
    const before = refused.size;
    for (const need of needs(remaining, https, options.acmeHosts).values()) {
      const problem =
        (servedRoot !== undefined ? outsideProblem(need, servedRoot) : undefined) ??
        (await pairProblem(need, driverFor(output) as OutputDriver, files, cache));
      if (problem === undefined) continue;
      for (const route of need.routes) {
        if (refused.has(id(route))) continue;
        refused.add(id(route));
        const field = problem.field === 'key' ? 'sslKey' : need.field;
        const label = labelOf(route, field);
        const setter = label ? `label ${label}` : `\`${field}\` of rule ${route.rule}`;
        diagnostics.push({
          severity: 'error',
          code: 'tls-material',
          message: `${problem.message}; the service is left out of the ${output.kind} output ${output.file}`,
          fix: problem.outside
            ? `put the ${problem.field === 'key' ? 'key' : 'certificate'} under ${https.certDir} and name it relative to it, e.g. ${label ?? field}=${path.basename(problem.outside)}`
            : need.field === 'hosts'
              ? `put ${need.cert} (certificate and key in one PEM file) in place, give the service a certificate of its own (${labelOf(route, 'sslCert') ?? 'sslCert'}), or set https.defaultCert`
              : `${problem.fix} (${setter})`,
          cluster: route.cluster,
          service: route.service,
          ...(label ? { label } : {}),
        });
      }
    }
    if (refused.size === before) break;
    remaining = routes.filter((r) => !refused.has(id(r)));
  }
  return diagnostics;
}

interface PairProblem {
  message: string;
  fix: string;
  /** The key file is what is wrong (missing, or named so HAProxy cannot find it). */
  field?: 'key';
  /** The file (outside a served output's folder) that agents cannot receive. */
  outside?: string;
}

/** A certificate or key file outside `root`, the folder of a served output. */
function outsideProblem(need: Need, root: string): PairProblem | undefined {
  const out = (file: string) => {
    const rel = path.relative(root, file);
    return rel === '' || rel.startsWith('..') || path.isAbsolute(rel);
  };
  for (const [file, field] of [
    [need.cert, undefined],
    [need.key, 'key'],
  ] as const) {
    if (file === undefined || !out(file)) continue;
    return {
      message: `${field === 'key' ? 'key' : 'certificate'} ${file} is outside the folder ${root} of this output, which is served to agents (they receive only files under it)`,
      fix: '',
      outside: file,
      ...(field ? { field } : {}),
    };
  }
  return undefined;
}

async function pairProblem(
  need: Need,
  driver: OutputDriver,
  files: MaterialFiles,
  cache: MaterialCache,
): Promise<PairProblem | undefined> {
  const what = need.host !== undefined ? `certificate for host ${need.host}` : 'certificate';
  const keyFile = need.key !== undefined && need.key !== need.cert ? driver.keyFileFor(need.cert) : undefined;
  if (keyFile !== undefined && need.key !== keyFile) {
    const wanted = keyFile.slice(keyFile.lastIndexOf('/') + 1);
    return {
      field: 'key',
      message: `key file ${need.key} cannot be loaded by ${driver.title} with certificate ${need.cert}: it reads a separate key only from ${wanted} next to it`,
      fix: `name the key ${wanted} (for a certificate NAME.crt, the key is NAME.key), or put the key into the certificate file`,
    };
  }
  const certStat = await files.stat(need.cert);
  if (!certStat) {
    return {
      message: `${what} file ${need.cert} does not exist`,
      fix: 'put the file in the certificate directory, or name one that is there',
    };
  }
  let keyStat: { mtimeMs: number; size: number } | undefined;
  if (need.key !== undefined) {
    keyStat = await files.stat(need.key);
    if (!keyStat) {
      return {
        field: 'key',
        message: `key file ${need.key} does not exist`,
        fix: 'put the key file in the certificate directory, or name one that is there',
      };
    }
  }
  const key = `${statKey(need.cert, certStat)}\u0001${need.key !== undefined && keyStat ? statKey(need.key, keyStat) : ''}`;
  let verdict = cache.get(key);
  if (!verdict) {
    let texts: { cert: string; key: string | undefined };
    try {
      texts = {
        cert: await files.readText(need.cert),
        key: need.key !== undefined ? await files.readText(need.key) : undefined,
      };
    } catch (error) {
      // Not cached: a permission fixed later changes neither mtime nor size.
      return {
        message: `${what} ${need.cert}${need.key !== undefined ? ` or key ${need.key}` : ''} cannot be read (${error instanceof Error ? error.message : String(error)})`,
        fix: 'let interlock read the files the proxy loads (same user or group as the proxy)',
      };
    }
    verdict = { problem: pemPairProblem(texts.cert, texts.key) };
    cache.set(key, verdict.problem);
  }
  if (verdict.problem === undefined) return undefined;
  return {
    message: `${what} ${need.cert}${need.key !== undefined ? ` with key ${need.key}` : ''}: ${verdict.problem}`,
    fix: 'give a PEM certificate (then its chain) with its unencrypted private key, in the file or in the named key file',
  };
}

/** The material check the applier runs on every planned output of a config in `configDir`. */
export function materialCheck(configDir: string, options: MaterialOptions = {}): MaterialCheck {
  return (planned: PlannedOutput) =>
    checkTlsMaterial(withAbsolutePaths(planned.output, configDir), planned.routeList, {
      ...options,
      ...(planned.acmeHosts ? { acmeHosts: planned.acmeHosts } : {}),
    });
}

/**
 * Every TLS file an output's routes make its proxy load (certificates, separate keys, the default
 * certificate), as absolute paths: what a bundle served to agents must carry. `output` has its
 * paths absolute already.
 */
export function tlsFilesOf(
  output: FileOutput,
  routes: readonly Route[],
  acmeHosts: ReadonlySet<string> | undefined,
): string[] {
  const https = output.https;
  if (!https) return [];
  const files = new Set<string>();
  // ACME hosts load the issuer's certificate (by its absolute storage path, not from certDir).
  for (const need of needs(routes, https, acmeHosts).values()) {
    files.add(need.cert);
    if (need.key !== undefined) files.add(need.key);
  }
  if (https.defaultCert !== undefined) files.add(https.defaultCert);
  return [...files].sort();
}

/**
 * The ACME certificate files (absolute, under `acme.storage`) an output's routes make its proxy
 * load: those of hosts whose routes name no certificate of their own (the renderers' rule above),
 * once issued. What a bundle served to agents must carry besides `tlsFilesOf`.
 */
export function acmeFilesOf(
  routes: readonly Route[],
  certificates: ReadonlyMap<string, string | null> | undefined,
): string[] {
  if (!certificates) return [];
  const named = nameRoutes(routes).filter((n) => n.route.mode === 'http' && !n.route.sslPassthrough);
  const own = new Set(named.filter((n) => n.route.sslCert !== undefined).flatMap((n) => n.route.hosts));
  const files = new Set<string>();
  for (const { route } of named)
    for (const h of route.hosts) {
      const file = own.has(h) ? undefined : certificates.get(h);
      if (file) files.add(file);
    }
  return [...files].sort();
}
