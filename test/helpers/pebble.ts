/**
 * A private pebble (Let's Encrypt's test ACME server, Debian's `pebble`) with its mock DNS
 * (pebble-challtestsrv, every name → 127.0.0.1), on free loopback ports, for one test file. Real
 * HTTP-01: pebble connects to 127.0.0.1:`httpPort`, where the test's proxy listens. Its own
 * listener certificate is made here with openssl (the package ships none). Orders are counted
 * from pebble's own log ("Added order ... to the db").
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { freePort, waitForPort, whichTool } from './infra.ts';

export interface Pebble {
  directory: string;
  /** The CA that signed pebble's listener certificate (`acme.caFile`). */
  listenerCaFile: string;
  /** PEM of the root that signs issued certificates (changes with every pebble start). */
  root(): Promise<string>;
  /** Orders pebble has accepted so far. */
  orders(): number;
  output(): string;
  stop(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync(whichTool('openssl') ?? 'openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA and a certificate for 127.0.0.1/localhost signed by it, in `dir`. */
function listenerCertificate(dir: string): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=test pebble CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
    ],
    dir,
  );
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'key.pem', '-out', 'req.csr'],
    dir,
  );
  spawnSync('sh', ['-c', "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf"], { cwd: dir });
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'req.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
      '-out',
      'cert.pem',
    ],
    dir,
  );
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startPebble(options: {
  dir: string;
  httpPort: number;
  /** Seconds an issued certificate is valid (pebble's default: 5 years). */
  validitySeconds?: number;
  /** Names pebble refuses to issue for. */
  blocklist?: string[];
}): Promise<Pebble> {
  const { dir } = options;
  listenerCertificate(dir);
  const [acmePort, mgmtPort, dnsPort, dnsMgmtPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  await writeFile(
    path.join(dir, 'pebble-config.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: path.join(dir, 'cert.pem'),
        privateKey: path.join(dir, 'key.pem'),
        httpPort: options.httpPort,
        tlsPort: 5001,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(options.blocklist ? { domainBlocklist: options.blocklist } : {}),
        ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
      },
    }),
  );
  const dns = spawn(
    whichTool('pebble-challtestsrv') ?? 'pebble-challtestsrv',
    [
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${dnsMgmtPort}`,
    ],
    { stdio: 'ignore' },
  );
  let log = '';
  const pebble = spawn(
    whichTool('pebble') ?? 'pebble',
    ['-config', path.join(dir, 'pebble-config.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
    // No random sleep before validation; nonces rejected now and then, as pebble does by default.
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PEBBLE_VA_NOSLEEP: '1' } },
  );
  const onData = (b: Buffer) => {
    log += b.toString();
  };
  pebble.stdout?.on('data', onData);
  pebble.stderr?.on('data', onData);
  const stop = async () => {
    await Promise.all([stopChild(pebble), stopChild(dns)]);
  };
  try {
    await waitForPort(acmePort, { timeoutMs: 20_000 });
    await waitForPort(mgmtPort, { timeoutMs: 20_000 });
  } catch (error) {
    await stop();
    throw new Error(`pebble did not start: ${String(error)}\n${log}`);
  }
  const listenerCaFile = path.join(dir, 'ca.pem');
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    listenerCaFile,
    root: () =>
      new Promise((resolve, reject) => {
        const ca = readFileSync(listenerCaFile, 'utf8');
        https
          .get(`https://127.0.0.1:${mgmtPort}/roots/0`, { ca }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c.toString();
            });
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      }),
    orders: () => (log.match(/Added order "[^"]+" to the db/g) ?? []).length,
    output: () => log,
    stop,
  };
}
