/**
 * Automatic HTTPS against a real ACME server: pebble on loopback, real HTTP-01 validation (its mock
 * DNS answers 127.0.0.1, its validator connects to the proxy's HTTP listener, the proxy sends the
 * challenge to interlock's responder). `interlock watch` (the built binary) on the real Swarm.
 *
 * HAProxy, com.docker.lb labels, one service with two hosts, one of which pebble refuses:
 * - the good host answers over HTTPS with a certificate the pebble root trusts (time measured);
 * - the refused host keeps being served, with the default certificate, and /healthz names it
 *   with the ACME error; the good host is not affected;
 * - interlock killed right after creating an order, then restarted twice: pebble saw one order,
 *   and the stored certificate is served and reused;
 * - no key in /healthz or /metrics; the certificate file is 0600.
 * Nginx, interlock labels, pebble issuing 60-second certificates:
 * - trusted HTTPS through Nginx;
 * - renewal (a third of the lifetime left) served with no failed request meanwhile;
 * - pebble stopped: the next renewal fails with a clear error and the current certificate stays.
 *
 * Swarm services are named `it-acme-*` and removed afterwards. Traffic goes to 127.0.0.1 only.
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import type tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { interlock } from '../helpers/exec.ts';
import {
  createService,
  describeIntegration,
  freePort,
  type ProxyProcess,
  removeAllTestServices,
  startHaproxy,
  startNginx,
  tempDir,
  uniqueServiceName,
} from '../helpers/infra.ts';
import { type Pebble, startPebble } from '../helpers/pebble.ts';
import { selfSignedPem } from '../render/proxy-check.ts';
import { sleep, startWatch, type WatchProcess, waitFor } from '../watch/it-helpers.ts';

const PREFIX = 'it-acme';

interface TlsAnswer {
  status: number;
  body: string;
  authorized: boolean;
  cn: string;
  serial: string;
}

/** GET / over HTTPS to 127.0.0.1:`port` with SNI and Host `host`, trusting only `ca` (or nothing, to see what is served). */
function httpsGet(port: number, host: string, ca?: string): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        servername: host,
        headers: { host },
        path: '/',
        agent: false,
        ...(ca ? { ca, rejectUnauthorized: true } : { rejectUnauthorized: false }),
        timeout: 5000,
      },
      (res) => {
        const socket = res.socket as tls.TLSSocket;
        const cert = socket.getPeerCertificate();
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            authorized: socket.authorized,
            cn: String((cert.subject as { CN?: string } | undefined)?.CN ?? ''),
            serial: cert.serialNumber ?? '',
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`https://${host}:${port} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * For a wait that timed out: rethrows its error with what each process printed (the daemons' ACME
 * and apply lines, the proxy's output), since which way a race went decides what to look at.
 */
function explain(parts: Record<string, WatchProcess | ProxyProcess | undefined>): (error: Error) => never {
  return (error) => {
    const sections = Object.entries(parts).map(([name, p]) => {
      const text = !p
        ? '(not started)'
        : 'lines' in p
          ? p
              .lines()
              .filter((l) => /ACME|acme|applied|reload|level=(warn|error)/.test(l))
              .slice(-40)
              .join('\n')
          : p.output().slice(-4000);
      return `--- ${name}:\n${text}`;
    });
    throw new Error(`${error.message}\n${sections.join('\n')}`);
  };
}

async function writeConfig(file: string, config: object): Promise<void> {
  await writeFile(file, stringify(config));
}

describeIntegration(
  'ACME through real HAProxy and Nginx against pebble (real HTTP-01)',
  ['docker', 'haproxy', 'nginx', 'pebble', 'pebble-challtestsrv', 'openssl'],
  () => {
    const stops: (() => Promise<unknown>)[] = [];
    beforeAll(async () => {
      await removeAllTestServices(PREFIX);
    });
    afterAll(async () => {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
    });

    /** Stops a daemon unless it is gone already (one is killed on purpose below). */
    const stopWatch = (w: WatchProcess | undefined) => async () => {
      if (!w || w.child.exitCode !== null || w.child.signalCode !== null) return;
      await w.stop();
    };

    // ---------------------------------------------------------------- HAProxy ----------
    const h = {
      dir: '',
      pebble: undefined as Pebble | undefined,
      haproxy: undefined as ProxyProcess | undefined,
      watch: undefined as WatchProcess | undefined,
      config: '',
      listen: 0,
      httpsPort: 0,
      good: '',
      refused: '',
    };

    async function startHaproxyWatch(): Promise<WatchProcess> {
      const w = await startWatch({ config: h.config, listenPort: h.listen });
      stops.push(stopWatch(w));
      return w;
    }

    it('HAProxy: a labelled host gets a certificate the pebble root trusts', async () => {
      h.dir = await tempDir('interlock-acme-haproxy-');
      const [httpPort, httpsPort, responder, listen, appPort] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      h.listen = listen;
      h.httpsPort = httpsPort;
      const id = `${process.pid}`;
      h.good = `good-${id}.acme.test`;
      h.refused = `refused-${id}.acme.test`;
      await mkdir(path.join(h.dir, 'pebble'));
      h.pebble = await startPebble({ dir: path.join(h.dir, 'pebble'), httpPort, blocklist: [h.refused] });
      stops.push(() => h.pebble?.stop() ?? Promise.resolve());
      await mkdir(path.join(h.dir, 'certs'));
      await writeFile(path.join(h.dir, 'certs', 'default.pem'), selfSignedPem());
      h.config = path.join(h.dir, 'interlock.config.yaml');
      await writeConfig(h.config, {
        clusters: { local: { endpoint: { kind: 'socket', path: '/var/run/docker.sock' }, nodeAddress: '127.0.0.1' } },
        rules: [{ kind: 'docker-lb' }],
        outputs: [
          {
            kind: 'haproxy',
            file: 'haproxy.cfg',
            http: { address: '127.0.0.1', port: httpPort },
            https: { address: '127.0.0.1', port: httpsPort, certDir: 'certs', defaultCert: 'default.pem' },
            masterSocket: path.join(h.dir, 'stats.sock'),
            reload: { kind: 'haproxy-master', socket: path.join(h.dir, 'master.sock') },
          },
        ],
        acme: {
          directory: h.pebble.directory,
          email: 'ops@example.com',
          caFile: h.pebble.listenerCaFile,
          storage: 'acme',
          httpPort,
          challenge: { address: '127.0.0.1', port: responder },
          // The refused host is tried once in this test.
          retry: { min: '1h', max: '1h' },
        },
      });
      await createService({
        name: uniqueServiceName(PREFIX),
        labels: {
          'com.docker.lb.hosts': `${h.good},${h.refused}`,
          'com.docker.lb.port': String(appPort),
          'com.docker.lb.acme': 'true',
        },
        publish: { target: appPort, published: appPort },
        args: ['/bin/httpd', '-f', '-p', String(appPort), '-h', '/www'],
      });
      // validate: no warning about the HTTP-01 listener.
      const validated = await interlock(['validate', '--config', h.config], { timeoutMs: 90_000 });
      expect(validated.stdout + validated.stderr).not.toContain('acme-no-http-listener');
      expect(validated.code).toBe(0);
      // The proxy starts on a first render (no certificate yet: the default one).
      const rendered = await interlock(['render', '--config', h.config], { timeoutMs: 90_000 });
      expect(rendered.code, rendered.stderr).toBe(0);
      h.haproxy = await startHaproxy(path.join(h.dir, 'haproxy.cfg'), { port: httpPort, cwd: h.dir });
      stops.push(() => h.haproxy?.stop() ?? Promise.resolve());

      const started = Date.now();
      h.watch = await startHaproxyWatch();
      const root = await h.pebble.root();
      const answer = await waitFor(
        `a trusted HTTPS answer for ${h.good}`,
        async () => {
          const r = await httpsGet(httpsPort, h.good, root);
          return r.status === 200 && r.authorized ? r : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      ).catch(explain({ daemon: h.watch, haproxy: h.haproxy }));
      const seconds = (Date.now() - started) / 1000;
      console.log(`[acme] HAProxy: first trusted certificate ${seconds.toFixed(1)} s after interlock watch started`);
      expect(answer.body).toBe('ok\n');
      expect(answer.cn).toBe(h.good);
      expect(h.pebble.orders()).toBe(1);
    });

    it('HAProxy: the host pebble refuses is served with the default certificate, named with the ACME error', async () => {
      const w = h.watch as WatchProcess;
      await w.waitForLog(new RegExp(`ACME order failed.*host=${h.refused.replaceAll('.', '\\.')}`), {
        timeoutMs: 30_000,
      });
      const served = await httpsGet(h.httpsPort, h.refused);
      expect(served.status).toBe(200);
      expect(served.cn).toBe('test');
      const health = await w.health();
      const certs = health.body.certificates as {
        hosts: string[];
        state: string;
        lastError: { message: string } | null;
      }[];
      const refused = certs.find((c) => c.hosts.includes(h.refused));
      expect(refused?.state).toBe('failing');
      expect(refused?.lastError?.message).toMatch(/rejectedIdentifier|blocked|policy/i);
      const good = certs.find((c) => c.hosts.includes(h.good));
      expect(good).toMatchObject({ state: 'valid', lastError: null });
      expect(good).toHaveProperty('issuer');
      expect(good).toHaveProperty('notAfter');
      expect(good).toHaveProperty('nextRenewal');
      // Still healthy: the refused host is served (default certificate) and the daemon works.
      expect(health.status).toBe(200);
      // No key anywhere it could leak.
      expect(JSON.stringify(health.body)).not.toContain('PRIVATE KEY');
      const metrics = await w.metrics();
      expect(metrics).not.toContain('PRIVATE KEY');
      expect(metrics).toMatch(
        new RegExp(`interlock_acme_certificate_expiry_days\\{certificate="${h.good.replaceAll('.', '\\.')}"\\} \\d+`),
      );
      expect(w.lines().join('\n')).not.toContain('PRIVATE KEY');
      // `interlock status` prints both certificates, exits 1 while one is failing, never a key.
      const status = await interlock(['status', '--address', `127.0.0.1:${h.listen}`], { timeoutMs: 30_000 });
      expect(status.stdout).toMatch(new RegExp(`^${h.good.replaceAll('.', '\\.')}\\s+valid\\s`, 'm'));
      expect(status.stdout).toMatch(
        new RegExp(`^${h.refused.replaceAll('.', '\\.')}\\s+failing\\s.*rejectedIdentifier`, 'm'),
      );
      expect(status.stdout).not.toContain('PRIVATE KEY');
      expect(status.code).toBe(1);
      const certDir = path.join(h.dir, 'acme', 'certs');
      const files = (await readdir(certDir)).filter((f) => f.startsWith(h.good));
      expect(files).toHaveLength(1);
      expect((await stat(path.join(certDir, files[0] as string))).mode & 0o777).toBe(0o600);
    });

    it('HAProxy: restarts reuse the stored certificate; killed mid-order, the order is resumed, not made twice', async () => {
      const pebble = h.pebble as Pebble;
      const root = await pebble.root();
      const before = (await httpsGet(h.httpsPort, h.good, root)).serial;
      await h.watch?.stop();
      // After issuance: a restart orders nothing.
      h.watch = await startHaproxyWatch();
      await h.watch.waitForLog(/msg=applied|msg=watching/, { timeoutMs: 30_000 });
      await sleep(3000);
      expect(pebble.orders()).toBe(1);
      expect((await httpsGet(h.httpsPort, h.good, root)).serial).toBe(before);
      await h.watch.stop();

      // During issuance: a new host, interlock killed as soon as its order exists.
      const third = `third-${process.pid}.acme.test`;
      const config = (await import('node:fs')).readFileSync(h.config, 'utf8');
      await writeFile(h.config, config.replace('retry:', `hosts:\n    - ${third}\n  retry:`));
      const appPort = await freePort();
      await createService({
        name: uniqueServiceName(PREFIX),
        labels: { 'com.docker.lb.hosts': third, 'com.docker.lb.port': String(appPort) },
        publish: { target: appPort, published: appPort },
        args: ['/bin/httpd', '-f', '-p', String(appPort), '-h', '/www'],
      });
      const ordersBefore = pebble.orders();
      const killed = await startHaproxyWatch();
      await killed.waitForLog(/ACME order created.*third-/, { timeoutMs: 30_000 });
      killed.child.kill('SIGKILL');
      await waitFor(
        'the killed daemon to exit',
        () => killed.child.exitCode !== null || killed.child.signalCode !== null,
      );
      h.watch = await startHaproxyWatch();
      const resumedBy = h.watch;
      const answer = await waitFor(
        `a trusted HTTPS answer for ${third}`,
        async () => {
          const r = await httpsGet(h.httpsPort, third, root);
          return r.status === 200 && r.authorized ? r : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      ).catch(explain({ 'killed daemon': killed, 'next daemon': resumedBy, haproxy: h.haproxy }));
      expect(answer.cn).toBe(third);
      const resumed = h.watch.lines().some((l) => /ACME order resumed.*third-/.test(l));
      const issuedBeforeKill = killed.lines().some((l) => /ACME certificate issued.*third-/.test(l));
      const invalidated = h.watch.lines().find((l) => /ACME order in flight became invalid.*third-/.test(l));
      console.log(
        `[acme] killed mid-order: ${invalidated ? 'the order became invalid; one new order' : resumed ? 'the order was resumed' : 'issued before the kill'}`,
      );
      if (invalidated) {
        // The kill landed while pebble was validating: the responder was gone, so the challenge
        // failed and the CA made the order invalid, which ACME never revives (seen at the resume,
        // while waiting for the validation, or only at finalization). Exactly one new order
        // replaces it, and the log line says why.
        expect(invalidated).toMatch(
          /connection|refused|reset|timeout|unauthorized|EOF|502|503|reports the order invalid/i,
        );
        expect(pebble.orders()).toBe(ordersBefore + 2);
      } else {
        // Killed before the challenge was answered (or after issuance): one order for the new host.
        expect(resumed || issuedBeforeKill).toBe(true);
        expect(pebble.orders()).toBe(ordersBefore + 1);
      }
    });

    // ---------------------------------------------------------------- Nginx ----------
    const n = {
      dir: '',
      pebble: undefined as Pebble | undefined,
      watch: undefined as WatchProcess | undefined,
      httpsPort: 0,
      host: '',
    };

    it('Nginx: a labelled host gets a trusted certificate (pebble issues 60-second ones here)', async () => {
      n.dir = await tempDir('interlock-acme-nginx-');
      const [httpPort, httpsPort, responder, listen, appPort] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      n.httpsPort = httpsPort;
      n.host = `ng-${process.pid}.acme.test`;
      await mkdir(path.join(n.dir, 'pebble'));
      n.pebble = await startPebble({ dir: path.join(n.dir, 'pebble'), httpPort, validitySeconds: 60 });
      stops.push(() => n.pebble?.stop() ?? Promise.resolve());
      await mkdir(path.join(n.dir, 'certs'));
      await writeFile(path.join(n.dir, 'certs', 'default.pem'), selfSignedPem());
      const config = path.join(n.dir, 'interlock.config.yaml');
      await writeConfig(config, {
        clusters: { local: { endpoint: { kind: 'socket', path: '/var/run/docker.sock' }, nodeAddress: '127.0.0.1' } },
        outputs: [
          {
            kind: 'nginx',
            file: 'nginx.conf',
            http: { address: '127.0.0.1', port: httpPort },
            https: { address: '127.0.0.1', port: httpsPort, certDir: 'certs', defaultCert: 'default.pem' },
            reload: { kind: 'signal', pidFile: path.join(n.dir, 'nginx.pid') },
          },
        ],
        acme: {
          directory: n.pebble.directory,
          caFile: n.pebble.listenerCaFile,
          httpPort,
          challenge: { address: '127.0.0.1', port: responder },
          retry: { min: '2s', max: '4s' },
        },
      });
      await createService({
        name: uniqueServiceName(PREFIX),
        labels: {
          'interlock.hostname': n.host.split('.')[0] as string,
          'interlock.domain': n.host.split('.').slice(1).join('.'),
          'interlock.port': String(appPort),
          'interlock.acme': 'true',
        },
        publish: { target: appPort, published: appPort },
        args: ['/bin/httpd', '-f', '-p', String(appPort), '-h', '/www'],
      });
      const rendered = await interlock(['render', '--config', config], { timeoutMs: 90_000 });
      expect(rendered.code, rendered.stderr).toBe(0);
      const nginx = await startNginx('nginx.conf', n.dir, { port: httpPort });
      stops.push(() => nginx.stop());
      const started = Date.now();
      n.watch = await startWatch({ config, listenPort: listen });
      stops.push(stopWatch(n.watch));
      const root = await n.pebble.root();
      const answer = await waitFor(
        `a trusted HTTPS answer for ${n.host} through Nginx`,
        async () => {
          const r = await httpsGet(httpsPort, n.host, root);
          return r.status === 200 && r.authorized ? r : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      ).catch(explain({ daemon: n.watch, nginx }));
      console.log(
        `[acme] Nginx: first trusted certificate ${((Date.now() - started) / 1000).toFixed(1)} s after interlock watch started`,
      );
      expect(answer.body).toBe('ok\n');
    });

    it('Nginx: renewal at a third of the lifetime left is served with no failed request', async () => {
      const root = await (n.pebble as Pebble).root();
      const first = await httpsGet(n.httpsPort, n.host, root);
      const w = n.watch as WatchProcess;
      const from = w.lines().length;
      let requests = 0;
      const failures: string[] = [];
      let renewedServed: TlsAnswer | undefined;
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline && renewedServed === undefined) {
        try {
          const r = await httpsGet(n.httpsPort, n.host, root);
          requests++;
          if (r.status !== 200 || !r.authorized) failures.push(`${r.status} authorized=${r.authorized}`);
          else if (r.serial !== first.serial) renewedServed = r;
        } catch (error) {
          failures.push(String(error));
        }
        await sleep(100);
      }
      expect(
        w
          .lines()
          .slice(from)
          .some((l) => l.includes('ACME certificate renewed')),
      ).toBe(true);
      expect(renewedServed, 'the renewed certificate is served').toBeDefined();
      expect(failures).toEqual([]);
      expect(requests).toBeGreaterThan(10);
    });

    it('Nginx: pebble stopped, the next renewal fails with a clear error and the current certificate stays', async () => {
      const pebble = n.pebble as Pebble;
      const root = await pebble.root();
      const current = await httpsGet(n.httpsPort, n.host, root);
      await pebble.stop();
      const w = n.watch as WatchProcess;
      const line = await w.waitForLog(/ACME order failed; the host keeps its current certificate/, {
        timeoutMs: 40_000,
      });
      expect(line).toContain(`host=${n.host}`);
      expect(line).toMatch(/no answer from the ACME server: .*ECONNREFUSED/);
      const still = await httpsGet(n.httpsPort, n.host, root);
      expect(still.serial).toBe(current.serial);
      expect(still.status).toBe(200);
      const health = await w.health();
      const cert = (health.body.certificates as { hosts: string[]; state: string; lastError: unknown }[]).find((c) =>
        c.hosts.includes(n.host),
      );
      expect(cert?.state).toBe('failing');
      expect(cert?.lastError).not.toBeNull();
    });
  },
);
