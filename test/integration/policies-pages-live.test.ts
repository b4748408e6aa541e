/**
 * Traffic policies of issue 14, second part, through the real proxies, rendered by the real binary
 * (`interlock render --snapshot`) from a standalone-engine snapshot whose labelled containers are
 * node http servers of this test on loopback, with labels of both dialects:
 * - basic auth from an htpasswd file in the config's policyFiles folder (bcrypt and SHA-512
 *   users): 401 without credentials, 200 with them, 401 with a wrong password; a users file with a
 *   plain-text password, or a missing one, refuses that service naming the label;
 * - maintenance: 503 with the service's page (or the built-in one); removing the label and
 *   rendering again restores the service; an error page answers the proxy's own 502/503;
 * - canary: weights 90/10 over 2,000 requests give the canary 10 % ± 3 %; a third service that is
 *   not in the group and claims the host gets none of it (the diagnostic of today).
 *
 * No Docker Engine is needed. Network rule: traffic to 127.0.0.1 only.
 */
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { interlock } from '../helpers/exec.ts';
import {
  describeIntegration,
  freePort,
  type ProxyProcess,
  startHaproxy,
  startNginx,
  tempDir,
} from '../helpers/infra.ts';

// Users of the htpasswd fixture: bcrypt (cost 4, quick to check) and SHA-512-crypt.
const USERS = [
  'alice:$2b$04$SXcJt9jCmj4Z14XsWgHvauLXkcmEMczbEbTZYVvohc4nFnnW4p68W', // s3cret
  'bob:$6$jaRsFG429f4u.KXp$QHEZSErZSXiPgqjEePLQKbtFQujhjefjxaUxitDfZdFhnZVui.hzVE1.eHqqRiRNksbf/yPAea37Q7ANgj8ge0', // hunter22
].join('\n');
/** Debian's nogroup: the group of Nginx workers started by root without a `user` directive. */
const NOGROUP_GID = 65534;
const MAINTENANCE_PAGE = '<html><body><h1>Back at 10:00</h1><p>maintenance-marker</p></body></html>\n';
const ERROR_PAGE = '<html><body><h1>Sorry</h1><p>error-page-marker</p></body></html>\n';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, host: string, auth?: string, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        headers: { host, ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}) },
        agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer for ${host} on ${port}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Answers its own name. */
function backend(name: string): http.Server {
  return http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name) });
    res.end(name);
  });
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = server.address();
      if (a === null || typeof a !== 'object') reject(new Error('no port'));
      else resolve(a.port);
    });
  });
}

describeIntegration(
  'Basic auth, maintenance and error pages, canary groups through real HAProxy and Nginx',
  ['haproxy', 'nginx'],
  () => {
    let dir = '';
    const servers: http.Server[] = [];
    const ports = { haproxy: 0, nginx: 0 };
    const proxies: { haproxy?: ProxyProcess; nginx?: ProxyProcess } = {};
    let renderOutput = '';
    let rendered = '';
    const containers: Array<{ Labels: Record<string, string> } & Record<string, unknown>> = [];

    const render = async () => {
      await writeFile(
        path.join(dir, 'snapshot.json'),
        JSON.stringify({ services: [], tasks: [], networks: [], nodes: [], containers }),
      );
      const r = await interlock(
        ['render', '--config', path.join(dir, 'interlock.config.yaml'), '--snapshot', path.join(dir, 'snapshot.json')],
        { timeoutMs: 60_000 },
      );
      // Refused services make it exit 1; the files are written for the others.
      if (r.code !== 0 && r.code !== 1) throw new Error(`interlock render exited ${r.code}\n${r.stdout}\n${r.stderr}`);
      return `${r.stdout}\n${r.stderr}`;
    };

    beforeAll(async () => {
      dir = await tempDir('ilpol2-');
      const lb = (labels: Record<string, string>) =>
        Object.fromEntries(Object.entries(labels).map(([k, v]) => [`com.docker.lb.${k}`, v]));
      const il = (labels: Record<string, string>) =>
        Object.fromEntries(Object.entries(labels).map(([k, v]) => [`interlock.${k}`, v]));
      let created = 1_700_000_000;
      const add = async (name: string, labels: (port: number) => Record<string, string>, port?: number) => {
        let p = port;
        if (p === undefined) {
          const server = backend(name);
          servers.push(server);
          p = await listen(server);
        }
        containers.push({
          Id: `${name.replace(/[^a-z0-9]/g, '')}00000000`,
          Names: [`/${name}`],
          State: 'running',
          // Older first, in the order added: the oldest claim on a host keeps it.
          Created: created++,
          Labels: labels(p),
          Ports: [{ IP: '127.0.0.1', PrivatePort: p, PublicPort: p, Type: 'tcp' }],
        });
      };
      await add('auth-lb', (port) => lb({ hosts: 'auth.pol.test', port: String(port), auth_users: 'web-users' }));
      await add('auth-il', (port) =>
        il({
          hostname: 'auth-il',
          domain: 'pol.test',
          port: String(port),
          auth_users: 'web-users',
          auth_realm: 'staff-only',
        }),
      );
      await add('plain', (port) => lb({ hosts: 'plain.pol.test', port: String(port), auth_users: 'plain-users' }));
      await add('missing', (port) =>
        il({ hostname: 'missing', domain: 'pol.test', port: String(port), auth_users: 'nope' }),
      );
      await add('maint', (port) =>
        il({
          hostname: 'maint',
          domain: 'pol.test',
          port: String(port),
          maintenance: 'true',
          error_page: 'maintenance.html',
        }),
      );
      await add('maint-lb', (port) => lb({ hosts: 'maint-lb.pol.test', port: String(port), maintenance: 'true' }));
      // Nothing listens on this port: the proxy answers 502 / 503 itself, with the page.
      await add(
        'down',
        (port) => lb({ hosts: 'down.pol.test', port: String(port), error_page: 'error.html' }),
        await freePort(),
      );
      await add('stable', (port) =>
        lb({ hosts: 'canary.pol.test', port: String(port), canary_group: 'web', weight: '90' }),
      );
      await add('canary', (port) =>
        il({ hostname: 'canary', domain: 'pol.test', port: String(port), canary_group: 'web', weight: '10' }),
      );
      await add('intruder', (port) => lb({ hosts: 'canary.pol.test', port: String(port) }));

      for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
      await mkdir(path.join(dir, 'secrets'), { recursive: true });
      await writeFile(path.join(dir, 'secrets', 'web-users'), `${USERS}\n`);
      await writeFile(path.join(dir, 'secrets', 'plain-users'), 'carol:password123\n');
      await writeFile(path.join(dir, 'secrets', 'maintenance.html'), MAINTENANCE_PAGE);
      await writeFile(path.join(dir, 'secrets', 'error.html'), ERROR_PAGE);
      // Nginx workers (nobody:nogroup when a root master's config names no user) read the htpasswd
      // file, written 0640: the output folder carries their group with setgid, as the README says.
      const out = path.join(dir, 'out');
      await mkdir(out, { recursive: true });
      if (process.getuid?.() === 0) {
        // The temp dir is 0700: the workers must be able to pass through it.
        await chmod(dir, 0o711);
        await chown(out, 0, NOGROUP_GID);
        await chmod(out, 0o2755);
      }
      await writeFile(
        path.join(dir, 'interlock.config.yaml'),
        stringify({
          clusters: { local: {} },
          rules: [{ kind: 'docker-lb' }, { kind: 'interlock' }],
          policyFiles: 'secrets',
          outputs: [
            {
              kind: 'haproxy',
              file: 'out/haproxy.cfg',
              http: { address: '127.0.0.1', port: ports.haproxy },
              accessLog: { format: 'json' },
            },
            {
              kind: 'nginx',
              file: 'out/nginx.conf',
              runDir: 'run',
              http: { address: '127.0.0.1', port: ports.nginx },
              accessLog: { format: 'json' },
            },
          ],
        }),
      );
      renderOutput = await render();
      rendered =
        (await readFile(path.join(out, 'haproxy.cfg'), 'utf8')) +
        (await readFile(path.join(out, 'nginx.conf'), 'utf8'));
      proxies.haproxy = await startHaproxy(path.join(out, 'haproxy.cfg'), { port: ports.haproxy });
      proxies.nginx = await startNginx(path.join(out, 'nginx.conf'), dir, { port: ports.nginx });
    }, 120_000);

    afterAll(async () => {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    });

    it('refuses a users file with a plain-text password and a missing one, naming the label; no hash is in a label', () => {
      expect(renderOutput).toMatch(/com\.docker\.lb\.auth_users[\s\S]*plain-text password/);
      expect(renderOutput).toMatch(/interlock\.auth_users[\s\S]*nope is not in the policyFiles folder/);
      expect(rendered).not.toContain('plain.pol.test');
      expect(rendered).not.toContain('password123');
      expect(rendered).not.toContain('missing.pol.test');
    });

    it('writes the htpasswd file and the HAProxy config with hashes 0640, not world-readable', async () => {
      const files = await import('node:fs/promises').then((fs) => fs.readdir(path.join(dir, 'out')));
      const htpasswd = files.filter((f) => f.endsWith('.htpasswd'));
      expect(htpasswd.length).toBe(2);
      for (const f of [...htpasswd, 'haproxy.cfg']) {
        expect(((await stat(path.join(dir, 'out', f))).mode & 0o777).toString(8), f).toBe('640');
      }
    });

    it('the canary group shares the host; the service outside it loses the host with the conflict diagnostic', () => {
      expect(renderOutput).toMatch(/canary\.pol\.test\/ already belongs to service stable[\s\S]*service intruder/);
    });

    describe.each([
      ['haproxy', () => ports.haproxy],
      ['nginx', () => ports.nginx],
    ] as const)('%s', (_name, port) => {
      it('basic auth: 401 without credentials, 200 with them (bcrypt and SHA-512), 401 with a wrong password', async () => {
        for (const host of ['auth.pol.test', 'auth-il.pol.test']) {
          const none = await request(port(), host);
          expect(none.status, host).toBe(401);
          expect(String(none.headers['www-authenticate'])).toMatch(/^Basic realm=/);
          expect((await request(port(), host, 'alice:s3cret')).status, host).toBe(200);
          expect((await request(port(), host, 'bob:hunter22')).body, host).toBe(
            host.startsWith('auth-il') ? 'auth-il' : 'auth-lb',
          );
          expect((await request(port(), host, 'alice:wrong')).status, host).toBe(401);
          expect((await request(port(), host, 'mallory:s3cret')).status, host).toBe(401);
        }
        expect(String((await request(port(), 'auth-il.pol.test')).headers['www-authenticate'])).toContain('staff-only');
      });

      it('maintenance: 503 with the page, or the built-in one', async () => {
        const a = await request(port(), 'maint.pol.test');
        expect(a.status).toBe(503);
        expect(a.body).toContain('maintenance-marker');
        expect(String(a.headers['content-type'])).toMatch(/^text\/html/);
        const b = await request(port(), 'maint-lb.pol.test');
        expect(b.status).toBe(503);
        expect(b.body).toContain('Down for maintenance');
      });

      it("error page: the proxy's own error for a backend that is down comes with the page", async () => {
        const a = await request(port(), 'down.pol.test');
        expect([502, 503]).toContain(a.status);
        expect(a.body).toContain('error-page-marker');
      });

      it('canary: weights 90/10 over 2,000 requests give the canary 10 % ± 3 %, and the intruder nothing', async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
        const counts = new Map<string, number>();
        try {
          for (let batch = 0; batch < 20; batch++) {
            const answers = await Promise.all(
              Array.from({ length: 100 }, () => request(port(), 'canary.pol.test', undefined, agent)),
            );
            for (const a of answers) counts.set(a.body, (counts.get(a.body) ?? 0) + 1);
          }
        } finally {
          agent.destroy();
        }
        expect(counts.get('intruder')).toBeUndefined();
        expect((counts.get('stable') ?? 0) + (counts.get('canary') ?? 0)).toBe(2000);
        const share = (counts.get('canary') ?? 0) / 2000;
        expect(share).toBeGreaterThanOrEqual(0.07);
        expect(share).toBeLessThanOrEqual(0.13);
      }, 120_000);
    });

    it('access log: both proxies write one JSON object a line with the same fields', async () => {
      expect(rendered).toContain("log-format '{");
      expect(rendered).toContain('log_format interlock_json escape=json');
      const uri = '/log-probe?q="quoted"&x=1';
      for (const p of [ports.haproxy, ports.nginx]) {
        const a = await new Promise<number>((resolve, reject) => {
          const req = http.request(
            {
              host: '127.0.0.1',
              port: p,
              path: uri,
              headers: { host: 'auth.pol.test', 'user-agent': 'probe "ua"' },
              agent: false,
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.setTimeout(15_000, () => req.destroy(new Error('no answer')));
          req.on('error', reject);
          req.end();
        });
        expect(a).toBe(401);
      }
      const objects = async (which: string, text: () => Promise<string>) => {
        // The proxies write the line once the answer is sent: wait for it (bounded).
        for (let i = 0; i < 100; i++) {
          const lines = (await text()).split('\n').filter((l) => l.includes('log-probe'));
          if (lines.length > 0) return lines.map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Record<string, unknown>);
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`no access log line from ${which}: ${(await text()).slice(-600)}`);
      };
      const fromHaproxy = await objects('haproxy', async () => proxies.haproxy?.output() ?? '');
      const fromNginx = await objects('nginx', () => readFile(path.join(dir, 'run', 'access.log'), 'utf8'));
      for (const [o] of [fromHaproxy, fromNginx]) {
        expect(Object.keys(o ?? {}).sort()).toEqual(
          [
            'bytes',
            'client',
            'duration_ms',
            'host',
            'method',
            'protocol',
            'referer',
            'status',
            'time',
            'uri',
            'user_agent',
          ].sort(),
        );
        expect(o?.status).toBe(401);
        expect(o?.uri).toBe(uri);
        expect(o?.user_agent).toBe('probe "ua"');
        expect(o?.host).toBe('auth.pol.test');
        expect(o?.client).toBe('127.0.0.1');
        expect(typeof o?.time).toBe('number');
        expect(typeof o?.duration_ms).toBe('number');
      }
    });

    it('removing the maintenance label and rendering again restores the service in both proxies', async () => {
      for (const c of containers) {
        delete c.Labels['interlock.maintenance'];
        delete c.Labels['com.docker.lb.maintenance'];
      }
      await render();
      await proxies.haproxy?.reload();
      await proxies.nginx?.reload();
      for (const p of [ports.haproxy, ports.nginx]) {
        const a = await request(p, 'maint.pol.test');
        expect(a.status).toBe(200);
        expect(a.body).toBe('maint');
        expect((await request(p, 'maint-lb.pol.test')).body).toBe('maint-lb');
      }
    }, 60_000);
  },
);
