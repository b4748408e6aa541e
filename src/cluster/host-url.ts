/** Docker engine addresses as the docker CLI writes them (`DOCKER_HOST`, a context's host, the config). */
import { maskCredentials } from '../diagnostics.ts';

/** The docker CLI's default engine address on Linux. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export type EndpointKind = 'socket' | 'tcp' | 'ssh';

/** An engine address, parsed. */
export interface Target {
  kind: EndpointKind;
  /** The address as a docker host URL (unix://, tcp://, ssh://). */
  url: string;
  socketPath?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
}

/**
 * Parses a docker host address as the CLI does: `unix://PATH`, `tcp://HOST[:PORT]`,
 * `ssh://[USER@]HOST[:PORT]`, or a bare `HOST:PORT` meaning tcp. The tcp port defaults to 2376
 * with TLS and 2375 without.
 */
export function parseHostUrl(raw: string, tls: boolean): Target {
  const value = raw.trim();
  // The address as messages show it: a password or a token in it is a secret.
  const shown = JSON.stringify(maskCredentials(value));
  const sep = value.indexOf('://');
  const scheme = sep === -1 ? 'tcp' : value.slice(0, sep);
  const rest = sep === -1 ? value : value.slice(sep + 3);
  if (scheme === 'unix') {
    const socketPath = rest === '' ? DEFAULT_DOCKER_SOCKET : rest;
    return { kind: 'socket', url: `unix://${socketPath}`, socketPath };
  }
  if (scheme !== 'tcp' && scheme !== 'ssh') {
    throw new Error(`unsupported engine address ${shown}: write unix://PATH, tcp://HOST:PORT or ssh://USER@HOST`);
  }
  let url: URL;
  try {
    // `http:` parses host, port, user and brackets for IPv6 the same way and is a special scheme.
    url = new URL(`http://${rest}`);
  } catch {
    throw new Error(`cannot parse engine address ${shown}`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new Error(`engine address ${shown} has a path; write ${scheme}://HOST:PORT`);
  }
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(rest)) {
    throw new Error(`engine address ${shown} has a query; write ${scheme}://HOST:PORT`);
  }
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const host = hostname === '' ? 'localhost' : hostname;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  if (scheme === 'ssh') {
    const port = url.port ? Number(url.port) : undefined;
    const username = url.username ? decodeURIComponent(url.username) : undefined;
    return {
      kind: 'ssh',
      // The password, if any, is a secret: keep it out of the display.
      url: `ssh://${username ? `${username}${url.password ? ':***' : ''}@` : ''}${hostForUrl}${port ? `:${port}` : ''}`,
      host,
      ...(port ? { port } : {}),
      ...(username ? { username } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    };
  }
  if (url.username || url.password) {
    throw new Error(
      `engine address ${shown} cannot carry credentials: a Docker Engine knows TCP clients by their TLS client certificate (tls.cert and tls.key files, or DOCKER_CERT_PATH)`,
    );
  }
  const port = url.port ? Number(url.port) : tls ? 2376 : 2375;
  return { kind: 'tcp', url: `tcp://${hostForUrl}:${port}`, host, port };
}

/** A loopback host: plain TCP to it crosses no network. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
