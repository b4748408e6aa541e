/**
 * The controller's HTTP-01 responder: answers `GET /.well-known/acme-challenge/<token>` with the
 * key authorization of an order in flight, 404 for anything else. Every proxy replica routes that
 * path here, so a validation request that lands on any replica (on any node that reaches
 * `acme.challenge.reachAt`) gets the answer, without a file to copy to each proxy first.
 */
import { createServer, type Server } from 'node:http';
import { ACME_CHALLENGE_PATH } from '../render/types.ts';

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export class ChallengeResponder {
  readonly #tokens = new Map<string, string>();
  #server: Server | undefined;

  set(token: string, keyAuthorization: string): void {
    this.#tokens.set(token, keyAuthorization);
  }

  delete(token: string): void {
    this.#tokens.delete(token);
  }

  /** Answers a request path: the key authorization, or undefined (404). */
  answer(urlPath: string): string | undefined {
    if (!urlPath.startsWith(ACME_CHALLENGE_PATH)) return undefined;
    const token = urlPath.slice(ACME_CHALLENGE_PATH.length);
    return TOKEN.test(token) ? this.#tokens.get(token) : undefined;
  }

  listen(address: string, port: number): Promise<void> {
    const server = createServer((req, res) => {
      const body =
        req.method === 'GET' || req.method === 'HEAD' ? this.answer((req.url ?? '').split('?')[0] ?? '') : undefined;
      if (body === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no such ACME challenge\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(req.method === 'HEAD' ? undefined : body);
    });
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address === '*' ? '0.0.0.0' : address.replace(/^\[|\]$/g, ''), () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** The port it listens on (after `listen`). */
  get port(): number | undefined {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
