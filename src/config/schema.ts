/**
 * The one schema of interlock's configuration. The TypeScript types, `defineConfig`, runtime
 * validation of every config format, and the committed JSON Schema all come from here.
 */
import { z } from 'zod';
import type { ServiceState } from '../cluster/model.ts';
import { carbonOutputSchema } from '../outputs/carbon-schema.ts';
import { haproxyOutputSchema } from '../outputs/haproxy-schema.ts';
import { logOutputSchema } from '../outputs/log-schema.ts';
import { nginxOutputSchema } from '../outputs/nginx-schema.ts';
import { parseAddress } from '../parse/fields.ts';
import { ACCESS_LOG_FORMATS, parseCidr } from '../parse/policy-fields.ts';
import type { RouteSpec } from '../routes/types.ts';
import { type Duration, parseDuration } from './duration.ts';

const duration = z
  .union([z.number(), z.string()])
  .refine((v) => parseDuration(v) !== undefined, {
    message: 'not a duration: write "500ms", "10s", "1m", "1h" or a number of milliseconds',
  })
  .meta({
    description: 'A duration: "500ms", "10s", "1m", "1h", or a number of milliseconds.',
  }) as unknown as z.ZodType<Duration, Duration>;

const port = z
  .number()
  .int('a port is a whole number')
  .min(1, 'a port is between 1 and 65535')
  .max(65535, 'a port is between 1 and 65535');

const filePath = z.string().min(1, 'a file path cannot be empty');
const clusterNames = z
  .array(z.string().min(1))
  .min(1)
  .optional()
  .describe('Limit this output to these clusters (names from `clusters`). Default: all clusters.');

// ---------- clusters ----------

const tlsSchema = z
  .strictObject({
    ca: filePath.optional().describe('CA certificate (PEM) that signed the engine certificate.'),
    cert: filePath.optional().describe('Client certificate (PEM).'),
    key: filePath.optional().describe('Client key (PEM).'),
    verify: z
      .boolean()
      .default(true)
      .describe('Verify the server certificate. Only turn off when you accept a man in the middle.'),
  })
  .describe('TLS material for a tcp:// endpoint.');

const endpointSchema = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('socket'),
        path: filePath.describe('Path of the Docker Engine unix socket.'),
      })
      .describe('A unix socket, e.g. /var/run/docker.sock.'),
    z
      .strictObject({
        kind: z.literal('tcp'),
        host: z
          .string()
          .regex(/^tcp:\/\/[^/\s]+:\d+$/, 'write tcp://HOST:PORT')
          .describe('tcp://HOST:PORT'),
        tls: tlsSchema.optional(),
      })
      .describe('A TCP endpoint, with TLS material.'),
    z
      .strictObject({
        kind: z.literal('ssh'),
        host: z
          .string()
          .regex(/^ssh:\/\/([^@\s/]+@)?[^@\s/:]+(:\d+)?$/, 'write ssh://USER@HOST[:PORT]')
          .describe('ssh://USER@HOST[:PORT]'),
        identityFile: filePath.optional().describe('Private key file. Default: the ssh agent.'),
      })
      .describe('An engine reached over ssh, as `docker -H ssh://` does.'),
    z
      .strictObject({
        kind: z.literal('context'),
        name: z.string().min(1).describe('Name of a Docker CLI context (`docker context ls`).'),
      })
      .describe("A Docker CLI context, read from the docker CLI's own context store."),
    z
      .strictObject({ kind: z.literal('env') })
      .describe('What the docker CLI would use: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_CONTEXT.'),
  ])
  .describe('How to reach the Docker Engine. Default: the environment, as the docker CLI does.');

const clusterSchema = z
  .strictObject({
    endpoint: endpointSchema.optional(),
    nodeAddress: addressText('nodeAddress')
      .optional()
      .describe(
        "Address used for every node when routing to published ports (e.g. 127.0.0.1). Default: each node's own address.",
      ),
    timeout: duration.optional().describe('How long to wait for the engine before giving up. Default: 6s.'),
    localOnly: z
      .boolean()
      .optional()
      .describe(
        'Collect statistics only from containers on the engine this endpoint reaches (one collector per node).',
      ),
  })
  .describe('A Docker Engine (Swarm manager or standalone engine) to read.');

// ---------- rules ----------

const allowBroadWildcards = z
  .boolean()
  .optional()
  .describe(
    'Accept host wildcards directly on a public suffix or a single label (`*.com`, `*.co.uk`, `*.local`). Off by default: such a wildcard takes every host under it that no other route names.',
  );

const dialectCommon = {
  allowBroadWildcards,
  prefix: z
    .string()
    .regex(/^[a-z0-9]+([._-][a-z0-9]+)*$/, 'a label prefix is dotted lower-case words')
    .optional()
    .describe('Label prefix. Default: `interlock` or `com.docker.lb`.'),
  allowRawDirectives: z
    .boolean()
    .default(false)
    .describe(
      'Accept raw-directive labels such as `interlock.backend_option` (pasted into the proxy file). Off by default: whoever deploys a service could change the proxy.',
    ),
};

const interlockRule = z
  .strictObject({ kind: z.literal('interlock'), ...dialectCommon })
  .describe('The `interlock.*` labels of interlock 1.x.');
const dockerLbRule = z
  .strictObject({ kind: z.literal('docker-lb'), ...dialectCommon })
  .describe('The `com.docker.lb.*` labels of Interlock 2 (Docker EE layer 7 routing).');

export type RuleFunction = (
  service: ServiceState,
  context: { cluster: string },
) => RouteSpec | RouteSpec[] | null | undefined;

const customRule = z.strictObject({
  kind: z.literal('custom'),
  name: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'a rule name is letters, digits, `_` and `-`')
    .describe('Shown in diagnostics.'),
  routes: z.custom<RuleFunction>((v) => typeof v === 'function', {
    message: 'a custom rule needs `routes`, a function (only in .ts / .js configs)',
  }),
  allowBroadWildcards,
});

const dataRuleSchema = z.discriminatedUnion('kind', [interlockRule, dockerLbRule]);
const ruleSchema = z.discriminatedUnion('kind', [interlockRule, dockerLbRule, customRule]);

// ---------- outputs ----------

const validateSchema = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('binary'),
        path: filePath.optional().describe('Path of the proxy binary. Default: found on PATH.'),
      })
      .describe("The proxy's own check: `haproxy -c -f FILE` or `nginx -t -c FILE`."),
    z
      .strictObject({
        kind: z.literal('command'),
        command: z
          .array(z.string())
          .min(1)
          .describe('argv; `{file}` is replaced by the file to check. Exit 0 means valid.'),
      })
      .describe('Your own check command.'),
    z.strictObject({ kind: z.literal('none') }).describe('Do not validate (not recommended).'),
  ])
  .describe("How to check a rendered file before it replaces the old one. Default: the proxy's own check.");

const reloadSchema = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('command'),
        command: z.array(z.string()).min(1).describe('argv of the reload command.'),
      })
      .describe('Run a command.'),
    z
      .strictObject({
        kind: z.literal('signal'),
        pidFile: filePath.describe('File holding the pid of the proxy (master) process.'),
        signal: z.enum(['SIGHUP', 'SIGUSR1', 'SIGUSR2']).optional(),
      })
      .describe('Send a signal to a pid read from a pid file. Default signal: SIGUSR2 for HAProxy, SIGHUP for Nginx.'),
    z
      .strictObject({
        kind: z.literal('haproxy-master'),
        socket: filePath.describe('HAProxy master CLI socket (`-S`).'),
      })
      .describe("`reload` on HAProxy's master socket."),
    z
      .strictObject({
        kind: z.literal('docker-signal'),
        cluster: z.string().min(1).optional().describe('Cluster whose engine runs the proxies. Default: the only one.'),
        label: z
          .string()
          .regex(/^[^=\s]+(=[^\s]*)?$/, 'write KEY or KEY=VALUE')
          .describe('Label that marks the proxy containers (KEY or KEY=VALUE).'),
        signal: z.enum(['SIGHUP', 'SIGUSR1', 'SIGUSR2']).optional(),
      })
      .describe('Signal proxy containers or Swarm tasks found by label through the Docker API.'),
    z.strictObject({ kind: z.literal('none') }).describe('Write the file only.'),
  ])
  .describe('How to reload the proxy after a new file is in place. Default: none.');

/**
 * An address as the renderers and the cluster mapping read it, so `validate` refuses exactly what
 * `render` would: an IPv4 / IPv6 address or a host name (`*` too, for listeners).
 */
function addressText(what: string, options: { star?: boolean } = {}) {
  return z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      const v = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
      if (options.star && v === '*') return;
      const r = parseAddress(v);
      if (!r.ok)
        ctx.addIssue({
          code: 'custom',
          message: `${what} ${JSON.stringify(value)}: ${r.error}; write an IP address or host name${options.star ? ' (or *)' : ''}, such as 127.0.0.1`,
        });
    });
}

const listenAddress = addressText('listen address', { star: true });

/** A network in CIDR form, or one address, as the traffic policies read it. */
const cidrText = z.string().superRefine((value, ctx) => {
  const r = parseCidr(value);
  if (!r.ok)
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)}: ${r.error}${r.fix ? `; ${r.fix}` : ''}` });
});

const httpListen = z.strictObject({
  address: listenAddress.default('0.0.0.0').describe('Address to bind. Default: 0.0.0.0.'),
  port: port.default(80),
  proxyProtocol: z
    .strictObject({
      trusted: z
        .array(cidrText)
        .min(1)
        .describe('Networks (CIDR) of the load balancers whose PROXY header gives the client address.'),
    })
    .optional()
    .describe(
      'Accept the PROXY protocol (v1/v2) on this listener from the trusted load balancers: the client address in it is the one allow lists, rate limits and X-Forwarded-For use. See README, Traffic policies.',
    ),
});

const httpsListen = z.strictObject({
  address: listenAddress.default('0.0.0.0'),
  port: port.default(443),
  certDir: filePath.describe('Directory of PEM certificates (SNI picks one per host).'),
  defaultCert: filePath
    .optional()
    .describe(
      'Certificate and key (one PEM file) served when no SNI name matches, and to hosts without a certificate of their own: a file in certDir, or an absolute path. Without it, hosts use <certDir>/<host>.pem.',
    ),
});

const fileOutputCommon = {
  name: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .optional()
    .describe('Name shown in logs. Default: the kind, with its index when repeated.'),
  file: filePath.describe('File to write (relative paths are relative to the config file).'),
  template: filePath.optional().describe('Your own mustache template instead of the built-in one.'),
  clusters: clusterNames,
  validate: validateSchema.optional(),
  reload: reloadSchema.optional(),
  http: httpListen.default({ address: '0.0.0.0', port: 80 }).describe('Plain HTTP listener.'),
  https: httpsListen.optional().describe('HTTPS listener. Needed for `ssl_only` routes to redirect to.'),
  accessLog: z
    .strictObject({
      format: z
        .enum(ACCESS_LOG_FORMATS)
        .describe(
          '`common` (Common Log Format), `combined` (with Referer and User-Agent) or `json` (one object a line).',
        ),
    })
    .optional()
    .describe(
      "Log every request of the output's HTTP and HTTPS listeners in a named format: HAProxy to stderr, Nginx to <runDir>/access.log. Default: no access log. See README, Traffic policies.",
    ),
  serve: z
    .boolean()
    .optional()
    .describe(
      'Serve this output to `interlock agent`s (needs `agents` at the top level). Its paths (`file`, `certDir`, `runDir`) are the paths on the proxy hosts. Default: false.',
    ),
  write: z
    .boolean()
    .optional()
    .describe(
      "Write this output's files on this host and reload its proxy. false with `serve: true`: only agents get it. Default: true.",
    ),
};

/** What the output kinds' schema parts (src/outputs/<kind>-schema.ts) build on. */
const outputParts = { common: fileOutputCommon, filePath, port, listenAddress, duration, clusterNames };
export type OutputSchemaParts = typeof outputParts;

const haproxyOutput = haproxyOutputSchema(outputParts);
const nginxOutput = nginxOutputSchema(outputParts);
const carbonOutput = carbonOutputSchema(outputParts);
const logOutput = logOutputSchema(outputParts);

const outputSchema = z.discriminatedUnion('kind', [haproxyOutput, nginxOutput, carbonOutput, logOutput]);

// ---------- acme ----------

/** The directory presets; any other https:// URL names a directory itself. */
export const ACME_DIRECTORIES = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
} as const;

const acmeHostPattern = z
  .string()
  .regex(
    /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
    'write a lower-case host name, or *.domain for every host under it',
  );

const acmeSchema = z
  .strictObject({
    directory: z
      .union([
        z.enum(['letsencrypt', 'letsencrypt-staging']),
        z.string().regex(/^https:\/\/[^\s]+$/, 'write an https:// URL, letsencrypt or letsencrypt-staging'),
      ])
      .describe(
        'The ACME directory: `letsencrypt`, `letsencrypt-staging` (try this first: its rate limits are generous), or the https:// URL of another ACME server.',
      ),
    email: z
      .string()
      .regex(/^[^\s@]+@[^\s@]+$/, 'write an e-mail address')
      .optional()
      .describe('Contact address of the ACME account (expiry notices).'),
    externalAccountBinding: z
      .strictObject({
        kid: z.string().min(1).describe('Key identifier given by the CA.'),
        hmacKey: z.string().min(1).describe('HMAC key given by the CA (base64url).'),
      })
      .optional()
      .describe('External account binding, for CAs that require one (ZeroSSL, Google, private CAs).'),
    storage: filePath
      .default('acme')
      .describe(
        'Folder for the account key, certificates and order state (relative to the config). Keep it: a lost folder means new orders.',
      ),
    caFile: filePath
      .optional()
      .describe('A CA (PEM) to trust for the ACME server itself, for private ACME servers (relative to the config).'),
    hosts: z
      .array(acmeHostPattern)
      .optional()
      .describe(
        'Hosts that get certificates whatever their labels: a host name, or *.domain for every routed host under it. Services can also ask with the `acme=true` label.',
      ),
    httpPort: port
      .default(80)
      .describe(
        'The port the ACME server connects to for HTTP-01 (80 for every public CA); an output needs an http listener on it.',
      ),
    challenge: z
      .strictObject({
        address: addressText('challenge address')
          .default('127.0.0.1')
          .describe('Address the challenge responder binds.'),
        port: port.default(8402),
        reachAt: z
          .string()
          .regex(/^[^\s:/]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, 'write HOST:PORT')
          .optional()
          .describe(
            'HOST:PORT where every proxy reaches the responder (on other nodes too). Default: address:port, 127.0.0.1 for 0.0.0.0.',
          ),
      })
      .default({ address: '127.0.0.1', port: 8402 })
      .describe("The controller's HTTP-01 responder: the proxies send /.well-known/acme-challenge/ here."),
    retry: z
      .strictObject({
        min: duration.default('1m').describe('First wait after a failed order.'),
        max: duration.default('6h').describe('Longest wait between attempts.'),
      })
      .default({ min: '1m', max: '6h' })
      .describe("Backoff after failures; a server's Retry-After is waited for when it is longer."),
  })
  .describe('Automatic HTTPS: certificates from an ACME server (HTTP-01), issued by this controller for every proxy.');

// ---------- the whole config ----------

const watchSchema = z
  .strictObject({
    debounce: z
      .strictObject({
        min: duration.default('100ms').describe('Quiet time after the last event before rendering.'),
        max: duration.default('1s').describe('Longest wait after the first event of a burst.'),
      })
      .default({ min: '100ms', max: '1s' }),
    reconcile: duration.default('5s').describe('Full re-list interval (Swarm has no task events).'),
  })
  .default({ debounce: { min: '100ms', max: '1s' }, reconcile: '5s' });

const agentsSchema = z
  .strictObject({
    tokenFile: filePath.describe(
      'File holding the shared token agents must send (a Docker secret in a stack). Never logged.',
    ),
    listen: z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/, 'write ADDRESS:PORT, e.g. 0.0.0.0:8477')
      .default('0.0.0.0:8477')
      .describe('Where agents fetch bundles and report (ADDRESS:PORT). Default: 0.0.0.0:8477.'),
    tls: z
      .strictObject({
        cert: filePath.describe('Server certificate (PEM, with its chain).'),
        key: filePath.describe('Its private key (PEM).'),
      })
      .optional()
      .describe('Serve agents over HTTPS. Default: plain HTTP (keep it on an encrypted overlay network).'),
    wait: duration.default('30s').describe('Longest time a long-poll is held open before it answers "unchanged".'),
    staleAfter: duration
      .default('90s')
      .describe('An agent not heard from for this long is shown as stale; after 10 times as long it is forgotten.'),
  })
  .describe('Serve outputs marked `serve: true` to `interlock agent`s on proxy nodes.');

function configShape<R extends z.ZodType>(rule: R) {
  return z
    .strictObject({
      $schema: z.string().optional(),
      clusters: z
        .record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'a cluster name is letters, digits, `_` and `-`'), clusterSchema)
        .describe('Clusters to read, by name.'),
      rules: z
        .array(rule)
        .optional()
        .describe('How services become routes, in order. Default: the `interlock` label dialect.'),
      outputs: z.array(outputSchema).describe('What to produce.'),
      watch: watchSchema.optional(),
      agents: agentsSchema.optional(),
      acme: acmeSchema.optional(),
      policyFiles: filePath
        .optional()
        .describe(
          'Folder of the files labels name for basic-auth users and error pages (e.g. /run/secrets, where Docker mounts secrets). Labels name a file in it, never a path. See README, Traffic policies.',
        ),
    })
    .describe('interlock configuration');
}

export const configSchema = configShape(ruleSchema);
/** The data-only form (YAML / JSON): custom rules need code. */
export const dataConfigSchema = configShape(dataRuleSchema);

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
export type Endpoint = z.output<typeof endpointSchema>;
export type RuleConfig = z.output<typeof ruleSchema>;
export type OutputConfig = z.output<typeof outputSchema>;
export type HaproxyOutput = z.output<typeof haproxyOutput>;
export type NginxOutput = z.output<typeof nginxOutput>;
export type CarbonOutput = z.output<typeof carbonOutput>;
export type LogOutput = z.output<typeof logOutput>;
export type FileOutput = HaproxyOutput | NginxOutput;
export type AgentsConfig = z.output<typeof agentsSchema>;
export type AcmeConfig = z.output<typeof acmeSchema>;

export function jsonSchema(): unknown {
  return z.toJSONSchema(dataConfigSchema, { io: 'input', unrepresentable: 'any' });
}
