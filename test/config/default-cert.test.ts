import { describe, expect } from 'vitest';
import { checkConfig } from '../../src/config/check.ts';
import { configSchema } from '../../src/config/schema.ts';
import { itWithTools, selfSignedPair } from '../render/proxy-check.ts';

/** `validate` on one output with `https.defaultCert`, over an in-memory file system. */
function check(kind: 'haproxy' | 'nginx', files: Record<string, string>, https: Record<string, unknown>) {
  const config = configSchema.parse({
    clusters: { local: {} },
    outputs: [{ kind, file: `out/${kind}.conf`, https: { address: '127.0.0.1', port: 8443, ...https } }],
  });
  return checkConfig(config, {
    configDir: '/cfg',
    displayFile: 'interlock.config.ts',
    exists: (p) => p === '/cfg/certs' || p in files,
    readText: (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return text;
    },
    locate: () => undefined,
  })
    .filter((d) => d.code.startsWith('default-cert'))
    .map((d) => `${d.severity} ${d.code} ${d.path}: ${d.message}`);
}

describe('validate: https.defaultCert', () => {
  itWithTools('is a file inside certDir holding a certificate and its key', ['openssl'], async () => {
    const a = selfSignedPair('a.example.com');
    const b = selfSignedPair('b.example.com');
    const bundle = `${a.cert}${a.key}`;
    for (const kind of ['haproxy', 'nginx'] as const) {
      const https = { certDir: 'certs', defaultCert: 'default.pem' };
      expect(check(kind, { '/cfg/certs/default.pem': bundle }, https)).toEqual([]);
      // Relative to certDir, not to the config file: a file next to the config is not it.
      expect(check(kind, { '/cfg/default.pem': bundle }, https)).toEqual([
        'error default-cert-missing outputs[0].https.defaultCert: default certificate default.pem does not exist (looked at /cfg/certs/default.pem)',
      ]);
      expect(check(kind, { '/cfg/certs/default.pem': a.cert }, https)).toEqual([
        'error default-cert-invalid outputs[0].https.defaultCert: default certificate /cfg/certs/default.pem: the certificate file holds no private key (no -----BEGIN PRIVATE KEY----- block)',
      ]);
      expect(check(kind, { '/cfg/certs/default.pem': `${a.cert}${b.key}` }, https)[0]).toMatch(
        /default-cert-invalid .*the private key does not belong to the certificate \(subject CN=a.example.com\)/,
      );
      expect(check(kind, { '/cfg/certs/default.pem': 'hello' }, https)[0]).toMatch(/holds no certificate/);
      // An absolute path is used as it is.
      expect(check(kind, { '/etc/tls/d.pem': bundle }, { certDir: 'certs', defaultCert: '/etc/tls/d.pem' })).toEqual(
        [],
      );
    }
  });
});
