/**
 * Where config paths point. Pure: path arithmetic only, shared by `validate` and the pipeline so
 * both read a path the same way.
 */
import path from 'node:path';

/**
 * Where `https.defaultCert` is: inside `certDir` (both relative to the config file), unless absolute.
 * The pipeline renders the same path: `path.resolve(configDir, certDir, defaultCert)`.
 */
export function defaultCertFile(configDir: string, https: { certDir: string; defaultCert?: string }): string {
  return path.resolve(configDir, https.certDir, https.defaultCert ?? '');
}

/** A config path, resolved against the config file's folder. */
export function resolveConfigPath(configDir: string, p: string): string {
  return path.resolve(configDir, p);
}

/** Characters of the map file's content hash in its name. */
export const MAP_HASH_LENGTH = 12;

/**
 * Where the HAProxy host map is written: next to the config file, named after it and after its
 * own content (`haproxy.cfg` → `haproxy.hosts.<12 hex>.map`). The config names the map, so a new
 * map never replaces the one the config on disk reads: the pair switches with the config file.
 */
export function haproxyMapFile(file: string, hash: string): string {
  return path.join(path.dirname(file), `${haproxyMapStem(file)}.${hash}.map`);
}

export function haproxyMapStem(file: string): string {
  return `${path.basename(file).replace(/\.cfg$/, '')}.hosts`;
}

/**
 * Every map name an output's file may have had: hashed, or `<base>.hosts.map` of versions before
 * content-hashed maps. Two outputs whose patterns are one (same folder and base name) would remove
 * each other's maps, so `validate` refuses them.
 */
export function haproxyMapPattern(file: string): { dir: string; pattern: RegExp; display: string } {
  const stem = haproxyMapStem(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    dir: path.dirname(file),
    pattern: new RegExp(`^${stem}\\.(?:[0-9a-f]{${MAP_HASH_LENGTH}}\\.)?map$`),
    display: path.join(path.dirname(file), `${haproxyMapStem(file)}.*.map`),
  };
}

/**
 * The HAProxy certificate list, named like the map after its own content
 * (`haproxy.cfg` → `haproxy.<12 hex>.crt-list`): the config names it, so the pair switches with
 * the config file.
 */
export function haproxyCrtListFile(file: string, hash: string): string {
  return path.join(path.dirname(file), `${haproxyBase(file)}.${hash}.crt-list`);
}

function haproxyBase(file: string): string {
  return path.basename(file).replace(/\.cfg$/, '');
}

/** Every certificate list name an output's file may have had: hashed, or the unhashed one. */
export function haproxyCrtListPattern(file: string): { dir: string; pattern: RegExp; display: string } {
  const base = haproxyBase(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    dir: path.dirname(file),
    pattern: new RegExp(`^${base}\\.(?:[0-9a-f]{${MAP_HASH_LENGTH}}\\.)?crt-list$`),
    display: path.join(path.dirname(file), `${haproxyBase(file)}.*.crt-list`),
  };
}

/**
 * The files of routes' traffic policies, next to the config: `<base>.<route>.<kind>-page.html`
 * (error / maintenance pages) and `<base>.<route>.<kind>.htpasswd` (Nginx's basic-auth users).
 * The config names each, so one a route no longer needs is removed like an unused map; the kind
 * in the name keeps an HAProxy and an Nginx output of one base name from removing each other's.
 */
export function policyFilePattern(
  file: string,
  kind: 'haproxy' | 'nginx',
): { dir: string; pattern: RegExp; display: string; perRoute: true } {
  const base = policyFileBase(file);
  const stem = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    dir: path.dirname(file),
    pattern: new RegExp(`^${stem}\\.[A-Za-z0-9_.-]+\\.(?:${kind}-page\\.html|${kind}\\.htpasswd)$`),
    display: path.join(path.dirname(file), `${base}.*.${kind}-page.html`),
    // One file per route that needs it, not one file of the output: no path check probes it.
    perRoute: true,
  };
}

/** `haproxy.cfg` → `haproxy`, `nginx.conf` → `nginx`: the first part of the policy files' names. */
export function policyFileBase(file: string): string {
  return path.basename(file).replace(/\.(cfg|conf)$/, '');
}
