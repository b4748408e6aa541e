/**
 * Is this PEM text a certificate with its private key? Pure (node:crypto parses, nothing is read
 * here): `validate` uses it for `https.defaultCert`, src/apply/material.ts for the certificates
 * services name.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/;
const PRIVATE_KEY = /-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/;

function reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

/** What is wrong with the certificate text, or undefined. The first certificate is the server's. */
export function certificateProblem(certText: string): string | undefined {
  const block = CERTIFICATE.exec(certText)?.[0];
  if (block === undefined) return 'holds no certificate (no -----BEGIN CERTIFICATE----- block)';
  try {
    new X509Certificate(block);
    return undefined;
  } catch (error) {
    return `holds a certificate that does not parse (${reason(error)})`;
  }
}

/**
 * What is wrong with a certificate and its key, or undefined. `keyText` undefined means the key
 * must be in the certificate file (a bundle, as both proxies read it).
 */
export function pemPairProblem(certText: string, keyText?: string): string | undefined {
  const certProblem = certificateProblem(certText);
  if (certProblem !== undefined) return `the certificate file ${certProblem}`;
  const cert = new X509Certificate(CERTIFICATE.exec(certText)?.[0] ?? '');
  const keySource = keyText ?? certText;
  const where = keyText === undefined ? 'the certificate file' : 'the key file';
  const match = PRIVATE_KEY.exec(keySource);
  if (!match) return `${where} holds no private key (no -----BEGIN PRIVATE KEY----- block)`;
  if (match[1] === 'ENCRYPTED PRIVATE KEY') {
    return `${where} holds an encrypted private key, which the proxies cannot read without its passphrase`;
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(match[0]);
  } catch (error) {
    return `${where} holds a private key that does not parse (${reason(error)})`;
  }
  if (!cert.checkPrivateKey(key)) {
    return `the private key does not belong to the certificate (subject ${cert.subject.replaceAll('\n', ', ')})`;
  }
  return undefined;
}
