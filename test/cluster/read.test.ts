import { describe, expect, it } from 'vitest';
import {
  ClusterUnavailableError,
  type DockerApi,
  pingCluster,
  type ReadOptions,
  readSnapshot,
} from '../../src/cluster/read.ts';

const VERSION = { ApiVersion: '1.41', Version: '20.10.24' };
const MANAGER = { Swarm: { LocalNodeState: 'active', ControlAvailable: true } };
const WORKER = { Swarm: { LocalNodeState: 'active', ControlAvailable: false } };
const STANDALONE = { Swarm: { LocalNodeState: 'inactive', ControlAvailable: false } };

/** An engine in memory that records each call, as a request on the wire would be. */
function fakeEngine(info: unknown, answers: Partial<Record<keyof DockerApi, () => Promise<unknown>>> = {}) {
  const calls: string[] = [];
  const answer = (name: keyof DockerApi, value: unknown) => () => {
    calls.push(name);
    const custom = answers[name];
    return custom ? custom() : Promise.resolve(value);
  };
  const api: DockerApi = {
    version: answer('version', VERSION),
    info: answer('info', info),
    listServices: answer('listServices', [{ ID: 's1' }]),
    listTasks: answer('listTasks', [{ ID: 't1' }]),
    listNetworks: answer('listNetworks', [{ Id: 'n1' }]),
    listNodes: answer('listNodes', [{ ID: 'node1' }]),
    listContainers: answer('listContainers', [{ Id: 'c1' }]),
    getEvents: () => Promise.reject(new Error('not used')),
  };
  return { api, calls };
}

const options = { cluster: 'prod', timeoutMs: 1000, endpointDisplay: 'tcp://engine.test:2376' };

async function readError(api: DockerApi, opts: ReadOptions = options): Promise<ClusterUnavailableError> {
  const error = await readSnapshot(api, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClusterUnavailableError);
  expect((error as Error).message).not.toContain('\n');
  return error as ClusterUnavailableError;
}

describe('readSnapshot', () => {
  it('on a Swarm manager: version, info, then the five lists; metadata filled in', async () => {
    const { api, calls } = fakeEngine(MANAGER);
    const doc = await readSnapshot(api, options);
    expect(calls.sort()).toEqual(
      ['info', 'listContainers', 'listNetworks', 'listNodes', 'listServices', 'listTasks', 'version'].sort(),
    );
    expect(doc).toMatchObject({
      metadata: { cluster: 'prod', apiVersion: '1.41', engineVersion: '20.10.24' },
      services: [{ ID: 's1' }],
      tasks: [{ ID: 't1' }],
      networks: [{ Id: 'n1' }],
      nodes: [{ ID: 'node1' }],
      containers: [{ Id: 'c1' }],
    });
    expect(Date.parse(doc.metadata?.takenAt ?? '')).not.toBeNaN();
    expect(doc.metadata?.durationMs).toBeGreaterThanOrEqual(0);
  });

  it.each([
    ['standalone engine', STANDALONE],
    ['Swarm worker', WORKER],
  ])('on a %s: networks and containers only, no services key', async (_, info) => {
    const { api, calls } = fakeEngine(info);
    const doc = await readSnapshot(api, options);
    expect(calls.sort()).toEqual(['info', 'listContainers', 'listNetworks', 'version']);
    expect(Object.keys(doc).sort()).toEqual(['containers', 'metadata', 'networks']);
  });

  it('something that is not a Docker Engine is said so', async () => {
    const { api } = fakeEngine(MANAGER, { version: () => Promise.resolve(Buffer.from('<html>')) });
    const error = await readError(api);
    expect(error.failure).toBe('not-docker');
    expect(error.message).toBe(
      'cluster "prod" (tcp://engine.test:2376): not a Docker API: GET /version did not answer JSON',
    );
  });

  it('an engine error names the call and carries the engine message on one line', async () => {
    const engineError = Object.assign(new Error('(HTTP code 503) unexpected - This node is not a swarm manager.\n'), {
      statusCode: 503,
      json: { message: 'This node is not a swarm manager.\nUse "docker swarm init"' },
    });
    const { api } = fakeEngine(MANAGER, { listTasks: () => Promise.reject(engineError) });
    const error = await readError(api);
    expect(error.failure).toBe('engine');
    expect(error.message).toBe(
      'cluster "prod" (tcp://engine.test:2376): GET /tasks answered HTTP 503: This node is not a swarm manager. Use "docker swarm init"',
    );
  });

  it('an engine that never answers gives up at the deadline, even if the call ignores the abort', async () => {
    const { api } = fakeEngine(MANAGER, { listNodes: () => new Promise(() => {}) });
    const started = Date.now();
    const error = await readError(api, { ...options, timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error.failure).toBe('timeout');
    expect(error.message).toBe('cluster "prod" (tcp://engine.test:2376): timeout: no answer within 300ms');
  });

  it('stops at an abort from the caller', async () => {
    const { api } = fakeEngine(MANAGER, { version: () => new Promise(() => {}) });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const error = await readError(api, { ...options, timeoutMs: 5000, signal: controller.signal });
    expect(error.failure).toBe('aborted');
  });

  it('over ssh, a closed stream is reported as an ssh failure', async () => {
    const hangUp = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const { api } = fakeEngine(MANAGER, { version: () => Promise.reject(hangUp) });
    const error = await readError(api, { ...options, endpointDisplay: 'ssh://deploy@engine.test' });
    expect(error.failure).toBe('ssh');
    expect(error.message).toMatch(
      /^cluster "prod" \(ssh:\/\/deploy@engine.test\): ssh failure: the remote side closed/,
    );
  });
});

describe('pingCluster', () => {
  it('makes one call and returns the versions', async () => {
    const { api, calls } = fakeEngine(MANAGER);
    await expect(pingCluster(api, options)).resolves.toMatchObject({ apiVersion: '1.41', engineVersion: '20.10.24' });
    expect(calls).toEqual(['version']);
  });
});

describe('failure reasons', () => {
  const cases: [string, object, string, string][] = [
    [
      'permission',
      { code: 'EACCES', message: 'connect EACCES /var/run/docker.sock' },
      'permission',
      'permission denied',
    ],
    ['dns', { code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND engine.test' }, 'dns', 'host name not found'],
    [
      'bad client key',
      { code: 'ERR_OSSL_UNSUPPORTED', message: 'DECODER routines::unsupported' },
      'tls',
      'TLS failure',
    ],
    [
      'client certificate required',
      { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', message: 'tlsv13 alert certificate required' },
      'tls',
      'requires a client certificate',
    ],
    [
      'plain text on the port',
      { code: 'HPE_INVALID_CONSTANT', message: 'Expected HTTP/' },
      'not-docker',
      'not a Docker API',
    ],
    [
      'plain HTTP to a TLS engine',
      { statusCode: 400, message: 'Client sent an HTTP request to an HTTPS server.', json: Buffer.from('x') },
      'tls',
      'the engine expects TLS',
    ],
  ];
  it.each(cases)('%s', async (_, fields, failure, text) => {
    const { api } = fakeEngine(MANAGER, { version: () => Promise.reject(Object.assign(new Error(), fields)) });
    const error = await readError(api);
    expect(error.failure).toBe(failure);
    expect(error.message).toContain(text);
  });
});
