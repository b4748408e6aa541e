/**
 * `interlock render` and `interlock snapshot` (the real binary, built) against the real Swarm on
 * this machine, with real HAProxy and Nginx on loopback:
 * - Swarm services labelled in both dialects, published in host mode on loopback ports, and
 *   plain `docker run` containers with labels: each host reaches its own service through both
 *   proxies; an unknown host gets 503; a path prefix routes and is stripped; a sticky route sets
 *   its cookie; an ssl-only route redirects to https.
 * - Rendering a snapshot and rendering the live cluster give byte-identical files; also with two
 *   clusters, which merge into one route table where a host claimed twice is a diagnostic.
 * - A service on an overlay network, scaled: the number of backends in both files follows; removed:
 *   its route goes. Only the files are looked at (and checked with `haproxy -c` / `nginx -t`): no
 *   traffic is ever sent to an overlay address and no proxy is started on those files.
 *
 * Network rule (../shared/TEST-INFRA.md): traffic to 127.0.0.1 only.
 * Everything started here is removed in afterAll hooks, also when a test fails.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type ExecResult, interlock } from '../helpers/exec.ts';
import { mapNameIn, readHaproxyMap } from '../helpers/haproxy-map.ts';
import {
  checkHaproxy,
  checkNginx,
  createService,
  describeIntegration,
  dockerCli,
  freePort,
  httpGet,
  type ProxyProcess,
  removeAllTestServices,
  removeService,
  startHaproxy,
  startNginx,
  TEST_IMAGE,
  tempDir,
  uniqueServiceName,
  waitForHttp,
  waitForReplicas,
} from '../helpers/infra.ts';

const PREFIX = 'it-render';
/** Unique per worker, so concurrent test files never claim the same hosts. */
const DOMAIN = `rl${process.pid}.test.local`;

/** How long the identity checks retry while other test files keep changing the shared Swarm. */
const IDENTITY_RETRY_MS = 100_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A busybox httpd whose index says `body`, plus extra files, listening on 80. */
function serve(body: string, files: Record<string, string> = {}): string[] {
  const writes = [`echo ${body} > /www/index.html`, ...Object.entries(files).map(([f, t]) => `echo ${t} > /www/${f}`)];
  return ['/bin/sh', '-c', `${writes.join(' && ')} && exec httpd -f -p 80 -h /www`];
}

/**
 * A busybox httpd like `serve(body)`, plus a CGI application at /cgi-bin/app that behaves like a
 * Java app with JSESSIONID: it sets its session cookie when the request has none, and answers
 * with the Cookie header it received.
 */
function serveSessionApp(body: string): string[] {
  const cgi = [
    '#!/bin/sh',
    'echo "Content-Type: text/plain"',
    'case "$HTTP_COOKIE" in *JSESSIONID=*) ;; *) echo "Set-Cookie: JSESSIONID=app$$; Path=/";; esac',
    'echo',
    'echo "cookie=$HTTP_COOKIE"',
  ];
  const script = [
    'mkdir -p /www/cgi-bin',
    `printf '%s\n' ${cgi.map((l) => `'${l}'`).join(' ')} > /www/cgi-bin/app`,
    'chmod +x /www/cgi-bin/app',
    `echo ${body} > /www/index.html`,
    'exec httpd -f -p 80 -h /www',
  ];
  return ['/bin/sh', '-c', script.join(' && ')];
}

function expectOk(r: ExecResult, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

/** The `server` lines of the HAProxy backend rendered for `service` (undefined: no such backend). */
function haproxyServers(cfg: string, service: string): string[] | undefined {
  const blocks = cfg.split(/\n(?=# cluster )/);
  const block = blocks.find((b) => b.startsWith(`# cluster local, service ${service},`));
  if (block === undefined) return undefined;
  return block
    .split('\n\n')[0]
    ?.split('\n')
    .filter((l) => /^\s+server\s/.test(l));
}

/** The `server` lines of the Nginx upstream rendered for `service` (undefined: no such upstream). */
function nginxServers(conf: string, service: string): string[] | undefined {
  const re = new RegExp(
    `# cluster local, service ${service.replaceAll('.', '\\.')},[^\\n]*\\n\\s*upstream [^{]+\\{([^}]*)\\}`,
  );
  const m = re.exec(conf);
  if (m === null) return undefined;
  return (m[1] ?? '').split('\n').filter((l) => /^\s+server\s/.test(l));
}

async function readDir(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(dir)).sort()) out.set(name, await readFile(path.join(dir, name), 'utf8'));
  return out;
}

function sameFiles(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/** A unix socket at `file` that relays every connection to the local engine's socket. */
async function relaySocket(file: string): Promise<() => Promise<void>> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect('/var/run/docker.sock');
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, resolve);
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

describeIntegration(
  'render against the live Swarm; real traffic through HAProxy and Nginx',
  ['docker', 'haproxy', 'nginx'],
  () => {
    let dir = '';
    let config = '';
    let outDir = '';
    let hp = 0;
    let ng = 0;
    const containers: string[] = [];
    const svc = {
      a: uniqueServiceName(PREFIX),
      b: uniqueServiceName(PREFIX),
      api: uniqueServiceName(PREFIX),
      sticky: uniqueServiceName(PREFIX),
      secure: uniqueServiceName(PREFIX),
      hostless: uniqueServiceName(PREFIX),
      hostlessLb: uniqueServiceName(PREFIX),
    };
    /** Context roots without a host name, unique per worker (the Swarm is shared). */
    const hostlessPath = `/hl${process.pid}`;
    const hostlessLbPath = `/hl${process.pid}-lb`;
    const host = {
      a: `a.${DOMAIN}`,
      b: `b.${DOMAIN}`,
      sticky: `s.${DOMAIN}`,
      secure: `secure.${DOMAIN}`,
      c1: `c1.${DOMAIN}`,
      c2: `c2.${DOMAIN}`,
      c3: `c3.${DOMAIN}`,
      unknown: `nobody.${DOMAIN}`,
    };
    const container = {
      c1: `${PREFIX}-c1-${process.pid}`,
      c2: `${PREFIX}-c2-${process.pid}`,
      c3: `${PREFIX}-c3-${process.pid}`,
    };

    const render = (...args: string[]) => interlock(['render', '--config', config, ...args], { timeoutMs: 30_000 });

    /**
     * `interlock snapshot > s.json && interlock render --snapshot s.json` against `interlock render`
     * (one snapshot per cluster when `clusters` is given): asserts identical files, returns them.
     * Other test files change the shared Swarm meanwhile (watch-load relabels a service for up to
     * a minute), so each attempt takes snapshot S1, renders live, takes snapshot S2: a difference
     * between live and S1 is a failure when S2 renders like S1 (the cluster held still); otherwise
     * the attempt is repeated, for up to IDENTITY_RETRY_MS.
     */
    const identical = async (cfg: string, label: string, clusters?: string[]): Promise<Map<string, string>> => {
      const run = (args: string[]) => interlock([...args, '--config', cfg], { timeoutMs: 30_000 });
      const deadline = Date.now() + IDENTITY_RETRY_MS;
      for (let attempt = 1; ; attempt++) {
        const base = path.join(dir, `${label}-${attempt}`);
        await mkdir(base, { recursive: true });
        const snapshot = async (tag: string, viaStdout: boolean): Promise<string[]> => {
          const args: string[] = [];
          for (const name of clusters ?? [undefined]) {
            const file = path.join(base, `${tag}${name ? `-${name}` : ''}.json`);
            const cmd = ['snapshot', ...(name ? ['--cluster', name] : [])];
            if (viaStdout) {
              // As `interlock snapshot > s.json` in a shell: the document on stdout.
              const taken = await run(cmd);
              expectOk(taken, 'snapshot');
              await writeFile(file, taken.stdout);
            } else {
              expectOk(await run([...cmd, '--out', file]), 'snapshot --out');
            }
            args.push('--snapshot', name ? `${name}=${file}` : file);
          }
          return args;
        };
        const renderSnapshot = async (tag: string, args: string[]) => {
          expectOk(await run(['render', ...args, '--out-dir', path.join(base, tag)]), 'render --snapshot');
          return readDir(path.join(base, tag));
        };
        const s1 = await snapshot('S1', true);
        expectOk(await run(['render', '--out-dir', path.join(base, 'live')]), 'render (live)');
        const s2 = await snapshot('S2', false);
        const [a, live, c] = [
          await renderSnapshot('A', s1),
          await readDir(path.join(base, 'live')),
          await renderSnapshot('C', s2),
        ];
        if (sameFiles(a, live)) return a;
        if (sameFiles(a, c) || Date.now() > deadline) {
          const why = sameFiles(a, c)
            ? 'the cluster held still'
            : `the cluster never held still for one attempt in ${attempt} attempts`;
          expect([...live.keys()], why).toEqual([...a.keys()]);
          for (const [name, text] of a)
            expect(live.get(name), `${name}: live render vs snapshot render (${why})`).toBe(text);
          throw new Error('unreachable: the files differ');
        }
        await sleep(500);
      }
    };

    beforeAll(async () => {
      // Leftovers of an interrupted run: services, plain containers, networks.
      await removeAllTestServices(`${PREFIX}-`);
      const stale = (await dockerCli(['ps', '-aq', '--filter', `name=^${PREFIX}-c`])).split('\n').filter(Boolean);
      if (stale.length > 0) await dockerCli(['rm', '-f', ...stale]);
      for (const n of (await dockerCli(['network', 'ls', '--format', '{{.Name}}'])).split('\n')) {
        if (n.startsWith(`${PREFIX}-net-`)) await dockerCli(['network', 'rm', n]).catch(() => {});
      }
      dir = await tempDir('ilr-');
      outDir = path.join(dir, 'out');
      await mkdir(path.join(dir, 'run'), { recursive: true });
      [hp, ng] = [await freePort(), await freePort()];
      config = path.join(dir, 'interlock.config.yaml');
      await writeFile(
        config,
        stringify({
          clusters: {
            local: { endpoint: { kind: 'socket', path: '/var/run/docker.sock' }, nodeAddress: '127.0.0.1' },
          },
          rules: [{ kind: 'interlock' }, { kind: 'docker-lb' }],
          outputs: [
            { kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port: hp } },
            // runDir fixed, so files rendered under different --out-dir are comparable byte for byte.
            { kind: 'nginx', file: 'out/nginx.conf', runDir: 'run', http: { address: '127.0.0.1', port: ng } },
          ],
        }),
      );
    });

    afterAll(async () => {
      // Swarm services, proxies and temp dirs go in describeIntegration's stopAll.
      if (containers.length > 0) await dockerCli(['rm', '-f', ...containers]).catch(() => {});
    });

    describe('services of both dialects and plain containers, published on loopback', () => {
      let haproxy: ProxyProcess | undefined;
      let nginx: ProxyProcess | undefined;
      const ports: Record<string, number> = {};

      beforeAll(async () => {
        for (const k of ['a', 'b', 'api', 'sticky', 'secure', 'hostless', 'hostlessLb', 'c1', 'c2', 'c3'])
          ports[k] = await freePort();
        const publish = (k: string) => ({ target: 80, published: ports[k] ?? 0 });
        const i = (labels: Record<string, string>) =>
          Object.fromEntries(Object.entries(labels).map(([k, v]) => [`interlock.${k}`, v]));
        const lb = (labels: Record<string, string>) =>
          Object.fromEntries(Object.entries(labels).map(([k, v]) => [`com.docker.lb.${k}`, v]));

        const runContainer = async (
          name: string,
          port: number,
          labels: Record<string, string>,
          body: string,
          bind = '127.0.0.1',
        ) => {
          containers.push(name);
          await dockerCli(['rm', '-f', name]).catch(() => {});
          const flags = ['run', '-d', '--name', name, '-p', `${bind}:${port}:80`];
          for (const [k, v] of Object.entries(labels)) flags.push('--label', `${k}=${v}`);
          await dockerCli([...flags, TEST_IMAGE, ...serve(body)]);
        };

        await Promise.all([
          createService({
            name: svc.a,
            labels: i({ hostname: 'a', domain: DOMAIN, port: '80' }),
            publish: publish('a'),
            args: serve('svc-a'),
          }),
          createService({
            name: svc.b,
            labels: lb({ hosts: host.b, port: '80' }),
            publish: publish('b'),
            args: serve('svc-b'),
          }),
          createService({
            name: svc.api,
            labels: i({
              hostname: 'a',
              domain: DOMAIN,
              port: '80',
              context_root: '/api',
              context_root_rewrite: 'true',
            }),
            publish: publish('api'),
            args: serve('svc-api', { 'only-here.txt': 'api-file' }),
          }),
          createService({
            name: svc.sticky,
            labels: lb({ hosts: host.sticky, port: '80', sticky_session_cookie: 'JSESSIONID' }),
            publish: publish('sticky'),
            args: serveSessionApp('svc-sticky'),
          }),
          // interlock 1.x: "a context root instead of a hostname"; and the same in Interlock 2 labels.
          createService({
            name: svc.hostless,
            labels: i({ context_root: hostlessPath, context_root_rewrite: 'true', port: '80' }),
            publish: publish('hostless'),
            args: serve('svc-hostless'),
          }),
          createService({
            name: svc.hostlessLb,
            labels: lb({ context_root: hostlessLbPath, context_root_rewrite: 'true', port: '80' }),
            publish: publish('hostlessLb'),
            args: serve('svc-hostless-lb'),
          }),
          createService({
            name: svc.secure,
            labels: i({ hostname: 'secure', domain: DOMAIN, port: '80', ssl_only: 'true' }),
            publish: publish('secure'),
            args: serve('svc-secure'),
          }),
          runContainer(container.c1, ports.c1 ?? 0, i({ hostname: 'c1', domain: DOMAIN, port: '80' }), 'container-c1'),
          runContainer(container.c2, ports.c2 ?? 0, lb({ hosts: host.c2, port: '80' }), 'container-c2'),
          // Published on one other loopback address only: reachable there and nowhere else.
          runContainer(container.c3, ports.c3 ?? 0, lb({ hosts: host.c3, port: '80' }), 'container-c3', '127.0.0.2'),
        ]);
        // Every backend answers on its own before a proxy is put in front of it.
        await Promise.all(
          Object.entries(ports).map(([k, p]) =>
            waitForHttp(`http://${k === 'c3' ? '127.0.0.2' : '127.0.0.1'}:${p}/`, { accept: (r) => r.status === 200 }),
          ),
        );

        expectOk(await render(), 'interlock render');
        haproxy = await startHaproxy(path.join(outDir, 'haproxy.cfg'), { port: hp });
        nginx = await startNginx(path.join(outDir, 'nginx.conf'), dir, { port: ng });
      });

      afterAll(async () => {
        // Stopped here, before later tests put overlay addresses in the files.
        await haproxy?.stop();
        await nginx?.stop();
      });

      it('rendered one backend per service and container, on the published loopback ports', async () => {
        const cfg = await readFile(path.join(outDir, 'haproxy.cfg'), 'utf8');
        const conf = await readFile(path.join(outDir, 'nginx.conf'), 'utf8');
        for (const [key, name] of [...Object.entries(svc), ['c1', container.c1], ['c2', container.c2]] as const) {
          const server = `127.0.0.1:${ports[key]}`;
          expect(haproxyServers(cfg, name), `${name} in haproxy.cfg`).toEqual([expect.stringContaining(server)]);
          expect(nginxServers(conf, name), `${name} in nginx.conf`).toEqual([expect.stringContaining(server)]);
        }
      });

      describe.each([
        ['haproxy', () => hp],
        ['nginx', () => ng],
      ])('through %s', (_proxy, port) => {
        const url = (p = '/') => `http://127.0.0.1:${port()}${p}`;

        it('each host reaches its own service (both dialects)', async () => {
          for (const [h, body] of [
            [host.a, 'svc-a'],
            [host.b, 'svc-b'],
            [host.sticky, 'svc-sticky'],
          ] as const) {
            const r = await waitForHttp(url(), { host: h, accept: (x) => x.status === 200, timeoutMs: 5000 });
            expect(r.body, h).toBe(`${body}\n`);
          }
        });

        it('plain containers with labels (not Swarm services) route too', async () => {
          for (const [h, body] of [
            [host.c1, 'container-c1'],
            [host.c2, 'container-c2'],
          ] as const) {
            const r = await httpGet(url(), { host: h });
            expect({ status: r.status, body: r.body }, h).toEqual({ status: 200, body: `${body}\n` });
          }
        });

        // Fails while src/cluster/snapshot-map.ts lets the cluster's `nodeAddress` override the
        // address a container's port is bound to (it renders 127.0.0.1:PORT, where nothing listens).
        it('a container published on one specific address (127.0.0.2) is reached there, nodeAddress notwithstanding', async () => {
          const r = await httpGet(url(), { host: host.c3 });
          expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: 'container-c3\n' });
        });

        it('an unknown host gets 503', async () => {
          expect((await httpGet(url(), { host: host.unknown })).status).toBe(503);
          expect((await httpGet(url('/api/'), { host: host.unknown })).status).toBe(503);
        });

        it('a path prefix routes to its own service, stripped before the backend', async () => {
          for (const p of ['/api/', '/api']) {
            const r = await httpGet(url(p), { host: host.a });
            expect({ status: r.status, body: r.body }, p).toEqual({ status: 200, body: 'svc-api\n' });
          }
          // Only there once /api is stripped: the backend sees /only-here.txt.
          const file = await httpGet(url('/api/only-here.txt'), { host: host.a });
          expect({ status: file.status, body: file.body }).toEqual({ status: 200, body: 'api-file\n' });
          // The prefix is a path segment, not a string prefix; the rest of the host stays with a.
          expect((await httpGet(url('/apix'), { host: host.a })).status).toBe(404);
          expect((await httpGet(url('/'), { host: host.a })).body).toBe('svc-a\n');
          expect((await httpGet(url('/only-here.txt'), { host: host.a })).status).toBe(404);
        });

        // Fails while HAProxy inserts its own JSESSIONID (`insert indirect`: the application's is
        // replaced and stripped) or Nginx adds a second Set-Cookie of the same name.
        it("a cookie-sticky route leaves the application's own cookie (JSESSIONID) to the application", async () => {
          const first = await httpGet(url('/cgi-bin/app'), { host: host.sticky });
          expect(first.status, first.body).toBe(200);
          const setCookies = [first.headers['set-cookie'] ?? []].flat();
          const own = setCookies.filter((c) => c.startsWith('JSESSIONID='));
          expect(own, setCookies.join(' | ')).toHaveLength(1);
          // HAProxy shows the client `<server>~<value>`; the application's value is after the `~`.
          const issued = /^JSESSIONID=(?:[^;~]*~)?(app\d+)(?:;|$)/.exec(own[0] ?? '')?.[1];
          expect(issued, own[0]).toBeDefined();
          const jar = setCookies.map((c) => c.split(';')[0] ?? '').join('; ');
          for (let n = 0; n < 3; n++) {
            const next = await httpGet(url('/cgi-bin/app'), { host: host.sticky, headers: { cookie: jar } });
            expect(next.status).toBe(200);
            // The application receives exactly the value it set, and sets no new session.
            expect(/(?:^|; *|=)JSESSIONID=([^;\n]*)/.exec(next.body)?.[1], next.body).toBe(issued);
            expect([next.headers['set-cookie'] ?? []].flat().filter((c) => c.startsWith('JSESSIONID='))).toEqual([]);
          }
        });

        it('a context root without a host name answers on hosts no route names, in both dialects', async () => {
          for (const [p, body] of [
            [hostlessPath, 'svc-hostless'],
            [hostlessLbPath, 'svc-hostless-lb'],
          ] as const) {
            for (const h of [host.unknown, '127.0.0.1']) {
              const r = await httpGet(url(`${p}/`), { host: h });
              expect({ status: r.status, body: r.body }, `${h}${p}/`).toEqual({ status: 200, body: `${body}\n` });
            }
            // A host a route names keeps its own paths: svc-a's httpd has no such file.
            const named = await httpGet(url(`${p}/`), { host: host.a });
            expect(named.status, `${host.a}${p}/`).toBe(404);
          }
          expect((await httpGet(url(`${hostlessPath}x/`), { host: host.unknown })).status).toBe(503);
        });

        it('an ssl-only route redirects plain HTTP to https', async () => {
          const r = await httpGet(url('/x?y=1'), { host: host.secure });
          expect([301, 302, 307, 308]).toContain(r.status);
          expect(r.headers.location).toBe(`https://${host.secure}/x?y=1`);
        });
      });

      it(
        'snapshot then render --snapshot gives the same files as render from the live cluster',
        async () => {
          const files = await identical(config, 'identity');
          const mapName = mapNameIn(files.get('haproxy.cfg') ?? '') ?? 'no map named';
          expect([...files.keys()]).toEqual(['haproxy.cfg', mapName, 'nginx.conf']);
          // The snapshot holds what was routed here: services of both dialects and containers.
          expect(files.get(mapName)).toContain(`${host.a}/api/`);
          expect(files.get('nginx.conf')).toContain(host.c2);
        },
        IDENTITY_RETRY_MS + 40_000,
      );

      describe('two clusters (the same engine, reached through a second socket)', () => {
        let multi = '';
        let closeRelay: (() => Promise<void>) | undefined;

        beforeAll(async () => {
          const relay = path.join(dir, 'relay.sock');
          closeRelay = await relaySocket(relay);
          multi = path.join(dir, 'multi.config.yaml');
          const cluster = (socket: string) => ({
            endpoint: { kind: 'socket', path: socket },
            nodeAddress: '127.0.0.1',
          });
          await writeFile(
            multi,
            stringify({
              clusters: { east: cluster('/var/run/docker.sock'), west: cluster(relay) },
              rules: [{ kind: 'interlock' }, { kind: 'docker-lb' }],
              outputs: [
                { kind: 'haproxy', file: 'multi/haproxy.cfg', http: { address: '127.0.0.1', port: hp } },
                { kind: 'nginx', file: 'multi/nginx.conf', runDir: 'run', http: { address: '127.0.0.1', port: ng } },
              ],
            }),
          );
        });

        afterAll(async () => {
          await closeRelay?.();
        });

        it('merge into one route table; a host claimed in both is a diagnostic, never a silent winner', async () => {
          const out = path.join(dir, 'multi-out');
          const r = await interlock(['render', '--config', multi, '--out-dir', out], { timeoutMs: 30_000 });
          expectOk(r, 'render (two clusters)');
          const map = await readHaproxyMap(out);
          const cfg = await readFile(path.join(out, 'haproxy.cfg'), 'utf8');
          for (const [h, name] of [
            [host.a, svc.a],
            [host.b, svc.b],
            [host.c1, container.c1],
          ] as const) {
            // One route for the host, from one of the clusters; the other claim is an error naming both.
            expect(
              map.split('\n').filter((l) => l.startsWith(`${h}/ `)),
              h,
            ).toHaveLength(1);
            const owners = ['east', 'west'].filter((c) => cfg.includes(`# cluster ${c}, service ${name},`));
            expect(owners, name).toHaveLength(1);
            const loser = owners[0] === 'east' ? 'west' : 'east';
            expect(r.stderr).toContain(
              `error: cluster ${loser}, service ${name}: ${h}/ already belongs to service ${name} (cluster ${owners[0]},`,
            );
          }
          const strict = await interlock(['render', '--config', multi, '--out-dir', out, '--strict'], {
            timeoutMs: 30_000,
          });
          expect(strict.code, strict.stderr).toBe(1);
        });

        it(
          'snapshots of both clusters render the same files as the two live clusters',
          async () => {
            const files = await identical(multi, 'multi-identity', ['east', 'west']);
            expect(files.get(mapNameIn(files.get('haproxy.cfg') ?? '') ?? '')).toContain(`${host.b}/`);
          },
          IDENTITY_RETRY_MS + 40_000,
        );
      });
    });

    describe('scale and remove a service routed by overlay task addresses (files only)', () => {
      const name = uniqueServiceName(PREFIX);
      const network = `${PREFIX}-net-${process.pid}`;
      const scaleHost = `scale.${DOMAIN}`;
      let networkCreated = false;
      let scaleDir = '';

      /** Renders into its own dir, checks both files with the real proxies, returns the files. */
      const renderFiles = async () => {
        expectOk(await render('--out-dir', scaleDir), 'interlock render');
        const cfgFile = path.join(scaleDir, 'haproxy.cfg');
        const confFile = path.join(scaleDir, 'nginx.conf');
        const hc = await checkHaproxy(cfgFile);
        expect(hc.ok, hc.output).toBe(true);
        const nc = await checkNginx(confFile, dir);
        expect(nc.ok, nc.output).toBe(true);
        return {
          cfg: await readFile(cfgFile, 'utf8'),
          map: await readHaproxyMap(scaleDir),
          conf: await readFile(confFile, 'utf8'),
        };
      };
      const counts = (f: { cfg: string; conf: string }) => ({
        haproxy: haproxyServers(f.cfg, name)?.length,
        nginx: nginxServers(f.conf, name)?.length,
      });

      beforeAll(async () => {
        scaleDir = path.join(dir, 'scale-out');
        await dockerCli(['network', 'create', '--driver', 'overlay', network]);
        networkCreated = true;
        const labels = {
          'interlock.hostname': 'scale',
          'interlock.domain': DOMAIN,
          'interlock.port': '80',
          'interlock.network': network,
        };
        const flags = ['service', 'create', '--detach', '--name', name, '--network', network, '--replicas', '1'];
        flags.push('--stop-grace-period', '1s');
        for (const [k, v] of Object.entries(labels)) flags.push('--label', `${k}=${v}`);
        await dockerCli([...flags, TEST_IMAGE, '/bin/httpd', '-f', '-p', '80', '-h', '/www']);
        await waitForReplicas(name, 1);
      });

      afterAll(async () => {
        // Before the network: a network in use cannot be removed.
        await removeService(name);
        if (!networkCreated) return;
        const deadline = Date.now() + 20_000;
        for (;;) {
          try {
            await dockerCli(['network', 'rm', network]);
            return;
          } catch (e) {
            if (Date.now() > deadline) throw e;
            await sleep(500);
          }
        }
      });

      it('one replica: one backend on the overlay network in both files', async () => {
        const files = await renderFiles();
        expect(counts(files)).toEqual({ haproxy: 1, nginx: 1 });
        // Task addresses on the overlay network, at the labelled port (never contacted here).
        expect(haproxyServers(files.cfg, name)?.[0]).toMatch(/ \d+\.\d+\.\d+\.\d+:80\b/);
        expect(haproxyServers(files.cfg, name)?.[0]).not.toContain('127.0.0.1');
        expect(files.map).toContain(`${scaleHost}/`);
      });

      it('scaled to 3: three backends; back to 1: one', async () => {
        await dockerCli(['service', 'scale', '--detach', `${name}=3`]);
        await waitForReplicas(name, 3);
        const three = await renderFiles();
        expect(counts(three)).toEqual({ haproxy: 3, nginx: 3 });
        const addresses = haproxyServers(three.cfg, name)?.map((l) => l.trim().split(/\s+/)[2]);
        expect(new Set(addresses).size).toBe(3);

        await dockerCli(['service', 'scale', '--detach', `${name}=1`]);
        await waitForReplicas(name, 1);
        expect(counts(await renderFiles())).toEqual({ haproxy: 1, nginx: 1 });
      });

      it('removed: its route goes from both files', async () => {
        await removeService(name);
        const files = await renderFiles();
        expect(counts(files)).toEqual({ haproxy: undefined, nginx: undefined });
        expect(files.map).not.toContain(scaleHost);
        expect(files.conf).not.toContain(scaleHost);
        expect(files.cfg).not.toContain(name);
        // The other routes are still there.
        expect(files.map).toContain(`${host.b}/`);
      });
    });
  },
);
