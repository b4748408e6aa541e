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
