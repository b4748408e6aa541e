import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTlsMaterial, MaterialCache, type MaterialFiles, nodeMaterialFiles } from '../../src/apply/material.ts';
import type { HaproxyOutput, NginxOutput } from '../../src/config/schema.ts';
import type { Route } from '../../src/routes/types.ts';
import { route } from '../fixtures/routes/base.ts';
import { itWithTools, selfSignedPair } from '../render/proxy-check.ts';

let dir: string;
let certDir: string;
let demo: { cert: string; key: string };
let other: { cert: string; key: string };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'interlock-material-'));
  certDir = path.join(dir, 'certs');
  await import('node:fs/promises').then((fs) => fs.mkdir(certDir));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(certDir, name), text);
}

const haproxy = (): HaproxyOutput => ({
  kind: 'haproxy',
  file: path.join(dir, 'haproxy.cfg'),
  http: { address: '127.0.0.1', port: 8080 },
  https: { address: '127.0.0.1', port: 8443, certDir },
  maxconn: 100,
});
const nginx = (): NginxOutput => ({
  kind: 'nginx',
  file: path.join(dir, 'nginx.conf'),
  http: { address: '127.0.0.1', port: 8081 },
  https: { address: '127.0.0.1', port: 8443, certDir },
  workerConnections: 100,
});
const app = (service: string, hosts: string[], fields: Partial<Route> = {}) =>
  route({
    service,
    hosts,
    rule: 'docker-lb',
    backends: [{ name: `${service}-1`, address: '10.0.0.2', port: 80 }],
    ...fields,
  });

/** `cluster/service label: message` per diagnostic, after checking their shape. */
async function refused(output: HaproxyOutput | NginxOutput, routes: Route[], files?: MaterialFiles) {
  const ds = await checkTlsMaterial(output, routes, { cache: new MaterialCache(), ...(files ? { files } : {}) });
  for (const d of ds) {
    expect(d).toMatchObject({ severity: 'error', code: 'tls-material', cluster: 'local' });
    expect(d.fix).toBeTruthy();
  }
  return ds.map((d) => `${d.cluster}/${d.service} ${d.label ?? '-'}: ${d.message}`);
}

describe('checkTlsMaterial', () => {
  itWithTools('generates the test certificates', ['openssl'], async () => {
    demo = selfSignedPair('demo.local');
    other = selfSignedPair('other.local');
    await put({
      'demo.local.crt': demo.cert,
      'demo.local.key': demo.key,
      'demo.local.cert': demo.cert,
      'lonely.crt': demo.cert,
      'bundle.pem': `${demo.cert}${demo.key}`,
      'other.local.pem': `${other.cert}${other.key}`,
      'mismatch.crt': demo.cert,
      'mismatch.key': other.key,
      'cert-only.pem': demo.cert,
      'junk.pem': 'not a certificate\n',
    });
  });

  itWithTools('passes a bundle, a NAME.crt + NAME.key pair and a <host>.pem', ['openssl'], async () => {
    const routes = [
      app('a', ['a.local'], { sslCert: 'bundle.pem' }),
      app('b', ['b.local'], { sslCert: 'demo.local.crt', sslKey: 'demo.local.key' }),
      app('c', ['other.local']),
    ];
    expect(await refused(haproxy(), routes)).toEqual([]);
    expect(await refused(nginx(), routes)).toEqual([]);
  });

  itWithTools(
    'refuses the service alone: missing file, mismatched key, no key, not a certificate',
    ['openssl'],
    async () => {
      const routes = [
        app('ok', ['ok.local'], { sslCert: 'bundle.pem' }),
        app('missing', ['m.local'], { sslCert: 'nope.pem' }),
        app('missing-key', ['mk.local'], { sslCert: 'lonely.crt', sslKey: 'lonely.key' }),
        app('mismatch', ['x.local'], { sslCert: 'mismatch.crt', sslKey: 'mismatch.key' }),
        app('nokey', ['y.local'], { sslCert: 'cert-only.pem' }),
        app('junk', ['z.local'], { sslCert: 'junk.pem' }),
      ];
      for (const output of [haproxy(), nginx()]) {
        const ds = await refused(output, routes);
        expect(ds).toEqual([
          `local/junk com.docker.lb.ssl_cert: certificate ${certDir}/junk.pem: the certificate file holds no certificate (no -----BEGIN CERTIFICATE----- block); the service is left out of the ${output.kind} output ${output.file}`,
          `local/mismatch com.docker.lb.ssl_cert: certificate ${certDir}/mismatch.crt with key ${certDir}/mismatch.key: the private key does not belong to the certificate (subject CN=demo.local); the service is left out of the ${output.kind} output ${output.file}`,
          `local/missing com.docker.lb.ssl_cert: certificate file ${certDir}/nope.pem does not exist; the service is left out of the ${output.kind} output ${output.file}`,
          `local/missing-key com.docker.lb.ssl_key: key file ${certDir}/lonely.key does not exist; the service is left out of the ${output.kind} output ${output.file}`,
          `local/nokey com.docker.lb.ssl_cert: certificate ${certDir}/cert-only.pem: the certificate file holds no private key (no -----BEGIN PRIVATE KEY----- block); the service is left out of the ${output.kind} output ${output.file}`,
        ]);
      }
    },
  );

  itWithTools('refuses, for HAProxy only, a key HAProxy 2.6 cannot find by name', ['openssl'], async () => {
    // The Interlock 2 documentation's names: a valid pair Nginx loads; HAProxy 2.6 looks for demo.local.cert.key.
    const routes = [app('demo', ['demo.local'], { sslCert: 'demo.local.cert', sslKey: 'demo.local.key' })];
    expect(await refused(nginx(), routes)).toEqual([]);
    expect(await refused(haproxy(), routes)).toEqual([
      `local/demo com.docker.lb.ssl_key: key file ${certDir}/demo.local.key cannot be loaded by HAProxy 2.6 with certificate ${certDir}/demo.local.cert: it reads a separate key only from demo.local.cert.key next to it; the service is left out of the haproxy output ${dir}/haproxy.cfg`,
    ]);
  });

  itWithTools(
    'refuses a host with no <host>.pem when there is no default certificate, naming the hosts label',
    ['openssl'],
    async () => {
      const routes = [
        route({ service: 'web', hosts: ['web.local'], rule: 'interlock' }),
        app('other', ['other.local']),
        // A passthrough route loads no certificate.
        app('vault', ['vault.local'], { sslPassthrough: true }),
      ];
      expect(await refused(nginx(), routes)).toEqual([
        `local/web interlock.hostname: certificate for host web.local file ${certDir}/web.local.pem does not exist; the service is left out of the nginx output ${dir}/nginx.conf`,
      ]);
      // With a default certificate, hosts without their own use it: nothing to check per service.
      const withDefault = nginx();
      withDefault.https = { address: '127.0.0.1', port: 8443, certDir, defaultCert: `${certDir}/bundle.pem` };
      expect(await refused(withDefault, routes)).toEqual([]);
    },
  );

  itWithTools('checks again when leaving a service out makes a host load another file', ['openssl'], async () => {
    // shop.local takes the bad certificate of "shop-api"; without it, "shop-web" needs shop.local.pem.
    const routes = [
      app('shop-web', ['shop.local']),
      app('shop-api', ['shop.local'], { path: '/api', sslCert: 'junk.pem' }),
    ];
    const ds = await refused(nginx(), routes);
    expect(ds.map((d) => d.split(':')[0])).toEqual([
      'local/shop-api com.docker.lb.ssl_cert',
      'local/shop-web com.docker.lb.hosts',
    ]);
  });

  it('has nothing to check without https', async () => {
    const output = nginx();
    delete output.https;
    expect(await refused(output, [app('x', ['x.local'], { sslCert: 'nope.pem' })])).toEqual([]);
  });

  itWithTools('reads a file again only when its mtime or size changes', ['openssl'], async () => {
    let reads = 0;
    const files: MaterialFiles = {
      stat: nodeMaterialFiles.stat,
      readText: (p) => {
        reads++;
        return nodeMaterialFiles.readText(p);
      },
    };
    const cache = new MaterialCache();
    const routes = [app('a', ['a.local'], { sslCert: 'live.pem' })];
    const file = path.join(certDir, 'live.pem');
    await put({ 'live.pem': `${demo.cert}${demo.key}` });
    const check = () => checkTlsMaterial(nginx(), routes, { files, cache });
    expect(await check()).toEqual([]);
    expect(await check()).toEqual([]);
    expect(reads).toBe(1);
    // Replaced by a certificate without its key (a different size): read again, and refused.
    await put({ 'live.pem': demo.cert });
    expect((await check()).map((d) => d.service)).toEqual(['a']);
    expect(reads).toBe(2);
    // Same size, new mtime: read again.
    await put({ 'live.pem': other.cert.slice(0, demo.cert.length).padEnd(demo.cert.length, 'x') });
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    await check();
    expect(reads).toBe(3);
  });

  itWithTools(
    "leaves out of a served output only the service whose certificate lies outside the output's folder",
    ['openssl'],
    async () => {
      // Agents write only under their folder (the output's folder, rebased): a file elsewhere cannot
      // reach them, so that service alone is left out; the others (and relative names) keep working.
      const outside = await mkdtemp(path.join(os.tmpdir(), 'interlock-material-outside-'));
      try {
        await writeFile(path.join(outside, 'far.pem'), `${demo.cert}${demo.key}`);
        const routes = [
          app('far', ['far.local'], { sslCert: path.join(outside, 'far.pem') }),
          app('near', ['demo.local'], { sslCert: path.join(certDir, 'bundle.pem') }),
          app('rel', ['other.local'], { sslCert: 'other.local.pem' }),
        ];
        const served = { ...haproxy(), serve: true };
        expect(await refused(served, routes)).toEqual([
          `local/far com.docker.lb.ssl_cert: certificate ${path.join(outside, 'far.pem')} is outside the folder ${dir} of this output, which is served to agents (they receive only files under it); the service is left out of the haproxy output ${served.file}`,
        ]);
        const [d] = await checkTlsMaterial(served, routes, { cache: new MaterialCache() });
        expect(d?.fix).toBe(
          `put the certificate under ${certDir} and name it relative to it, e.g. com.docker.lb.ssl_cert=far.pem`,
        );
        // Not served: the file is read where it is.
        expect(await refused(haproxy(), routes)).toEqual([]);
      } finally {
        await rm(outside, { recursive: true, force: true });
      }
    },
  );

  it('bounds its cache', () => {
    const cache = new MaterialCache(2);
    cache.set('a', undefined);
    cache.set('b', 'bad');
    cache.set('c', undefined);
    expect(cache.size).toBeLessThanOrEqual(2);
    expect(cache.get('c')).toEqual({ problem: undefined });
  });
});
