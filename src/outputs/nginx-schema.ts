/**
 * The `nginx` output's part of the config schema: its own keys on top of those every file output
 * has (`common`). The config schema (src/config/schema.ts) hands in the shared parts.
 */
import { z } from 'zod';
import type { OutputSchemaParts } from '../config/schema.ts';

export function nginxOutputSchema({ common, filePath }: OutputSchemaParts) {
  return z
    .strictObject({
      kind: z.literal('nginx'),
      ...common,
      runDir: filePath
        .optional()
        .describe(
          'Directory for pid file, error log and temp paths, so `nginx -t` runs unprivileged. Default: the directory of `file`.',
        ),
      workerConnections: z.number().int().min(1).default(1024),
      streamModule: z
        .union([filePath.regex(/^\//, 'an absolute path to ngx_stream_module.so'), z.literal(false)])
        .optional()
        .describe(
          "The stream module TLS passthrough and TCP routes need, loaded with `load_module` only when such routes exist: an absolute path, or false when Nginx has it compiled in. Default: Debian's /usr/lib/nginx/modules/ngx_stream_module.so.",
        ),
    })
    .describe('An Nginx configuration file.');
}
