/**
 * A dockerode client for a resolved endpoint: plain or TLS agents with a bound on connecting, and
 * dockerode (with ssh2) loaded only when a connection is made.
 */
import http from 'node:http';
import https from 'node:https';
import Module, { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { ResolvedEndpoint } from './connect.ts';

/** A dockerode client for a resolved endpoint. */
export function connect(resolved: ResolvedEndpoint): Docker {
  const { tls, ...dockerOptions } = resolved.dockerOptions;
  let agent: http.Agent | undefined;
  if (resolved.kind === 'socket' || (resolved.kind === 'tcp' && !tls)) {
    agent = withConnectTimeout(new http.Agent({ keepAlive: false }), resolved.timeoutMs, 'connect');
  } else if (resolved.kind === 'tcp' && tls) {
    agent = withConnectTimeout(
      new https.Agent({
        keepAlive: false,
        ...(tls.ca ? { ca: tls.ca } : {}),
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
        rejectUnauthorized: tls.rejectUnauthorized,
      }),
      resolved.timeoutMs,
      'secureConnect',
    );
  }
  // docker-modem fills in defaults from process.env.DOCKER_HOST (and, through it, DOCKER_CERT_PATH
  // and DOCKER_TLS_VERIFY), which would override the endpoint resolved from the env we were given
  // or throw on a malformed value. Hide it for the synchronous constructor call only.
  const DockerClient = dockerode(resolved.kind === 'ssh');
  const saved = process.env.DOCKER_HOST;
  delete process.env.DOCKER_HOST;
  try {
    return new DockerClient({ ...dockerOptions, ...(agent ? { agent } : {}) } as Docker.DockerOptions);
  } finally {
    if (saved !== undefined) process.env.DOCKER_HOST = saved;
  }
}

const requireHere = createRequire(import.meta.url);
let dockerodeClass: typeof Docker | undefined;

/**
 * dockerode, loaded on the first connection rather than at start: commands that reach no engine
 * (render --snapshot, validate, schema, --help) never load it. Its docker-modem requires ssh2 as
 * it loads, and ssh2 instantiates a WebAssembly module then, which reserves more address space
 * than `ulimit -v` 8 GiB allows: so, unless this connection is over ssh, ssh2 is deferred until
 * an ssh connection is actually made.
 */
function dockerode(ssh: boolean): typeof Docker {
  if (dockerodeClass) return dockerodeClass;
  if (!ssh) deferSsh2();
  dockerodeClass = requireHere('dockerode') as typeof Docker;
  return dockerodeClass;
}

/**
 * Puts a stand-in for ssh2 in the module cache, where docker-modem's `require('ssh2')` finds it:
 * its `Client` loads the real ssh2 when docker-modem constructs one, i.e. when a request goes out
 * over ssh. docker-modem uses nothing else of ssh2.
 */
function deferSsh2(): void {
  const fromModem = createRequire(createRequire(requireHere.resolve('dockerode')).resolve('docker-modem'));
  const main = fromModem.resolve('ssh2');
  if (requireHere.cache[main]) return;
  let real: { Client: new (...args: unknown[]) => object } | undefined;
  const load = () => {
    if (!real) {
      delete requireHere.cache[main];
      real = fromModem('ssh2') as NonNullable<typeof real>;
    }
    return real;
  };
  // Called with `new`: returning an object makes it the result.
  const Client = function Client(...args: unknown[]) {
    const RealClient = load().Client;
    return new RealClient(...args);
  };
  const stand = new Module(main);
  stand.filename = main;
  stand.loaded = true;
  stand.exports = { Client };
  requireHere.cache[main] = stand;
}

/** Fails a connection that is not established (TCP, and TLS when secure) within the bound. */
function withConnectTimeout<A extends http.Agent>(agent: A, timeoutMs: number, readyEvent: string): A {
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (options, callback) => {
    const socket = create(options, callback) as Duplex | null | undefined;
    if (socket) {
      const timer = setTimeout(() => {
        const error = Object.assign(new Error(`connection not established within ${timeoutMs} ms`), {
          code: 'ETIMEDOUT',
        });
        socket.destroy(error);
      }, timeoutMs);
      socket.once(readyEvent, () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    }
    return socket;
  };
  return agent;
}
