/**
 * Basic auth users, error / maintenance pages and canary labels (issue 14, second part): the
 * parsers of the htpasswd file and the page, the label values against the hostile corpus and
 * generated input, and routes with them rendered for both proxies and checked by the real ones.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FieldResult } from '../../src/parse/fields.ts';
import {
  MAX_PAGE_BYTES,
  parseGroupName,
  parseHtpasswd,
  parsePage,
  parsePolicyFileName,
  parseRealm,
  parseWeight,
} from '../../src/parse/policy-fields.ts';
import { BUILT_IN_MAINTENANCE_PAGE, haproxyPolicyLines, nginxPolicyLines } from '../../src/render/policies.ts';
import type { Route } from '../../src/routes/types.ts';
import { HOSTILE_VALUES } from '../fixtures/hostile-values.ts';
import { route } from '../fixtures/routes/base.ts';
import { renderHaproxy, renderNginx } from '../helpers/render.ts';
import { haproxyCheck, itWithTools, nginxCheck, scratchDir } from '../render/proxy-check.ts';

const BCRYPT = '$2b$04$SXcJt9jCmj4Z14XsWgHvauLXkcmEMczbEbTZYVvohc4nFnnW4p68W';
const SHA512 =
  '$6$jaRsFG429f4u.KXp$QHEZSErZSXiPgqjEePLQKbtFQujhjefjxaUxitDfZdFhnZVui.hzVE1.eHqqRiRNksbf/yPAea37Q7ANgj8ge0';
const SHA256 = '$5$GqX9pp3LpfOec5kk$gaVJHBiSeSh.kI2WUzPdUpFM51vFOO5t9Hufc4FLcY6';

const error = <T>(r: FieldResult<T>): string => (r.ok ? '' : r.error);

describe('parseHtpasswd', () => {
  it('takes bcrypt ($2a$, $2b$, $2y$) and SHA-crypt users; skips blank lines and comments', () => {
    const r = parseHtpasswd(
      `# staff\nalice:${BCRYPT}\r\n\nbob:${SHA512}\ncarol:${SHA256}\ndave:${BCRYPT.replace('$2b$', '$2y$')}:a comment\n`,
    );
    expect(r.ok && r.value.map((u) => u.name)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(r.ok && r.value[3]?.hash).toBe(BCRYPT.replace('$2b$', '$2y$'));
  });

  it('refuses plain-text passwords and hashes HAProxy cannot check, naming the line, never the text', () => {
    const cases: Array<[string, RegExp]> = [
      ['carol:password123', /line 1 \(user carol\): not a bcrypt or SHA-crypt hash/],
      ['carol:{PLAIN}password123', /plain-text password/],
      ['carol:$apr1$abcdefgh$M2T3erDstkD7SsE2QQnfH0', /\$apr1\$.*HAProxy/],
      ['carol:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=', /\{SHA\}.*HAProxy/],
      ['carol:$1$YhsEUHo8$WiJ5ENq0OdnGJsF/ga.6Q0', /MD5-crypt.*too weak/],
      ['carol:$2b$04$short', /malformed/],
      ['carol:', /not a bcrypt/],
      [`alice:${BCRYPT}\nalice:${SHA512}`, /line 2: user alice is listed twice/],
      [`al ice:${BCRYPT}`, /line 1: a user name/],
      ['just-a-line', /line 1 is not `user:hash`/],
      ['', /no users/],
      ['# only a comment\n', /no users/],
    ];
    for (const [content, message] of cases) {
      const r = parseHtpasswd(content);
      expect(r.ok, content).toBe(false);
      expect(error(r), content).toMatch(message);
      expect(error(r), content).not.toContain('password123');
    }
  });

  it('refuses every hostile value in a user name or a hash, before or after a valid one', () => {
    for (const { name, value } of HOSTILE_VALUES) {
      for (const line of [
        `alice${value}:${BCRYPT}`,
        `${value}alice:${BCRYPT}`,
        `alice:${BCRYPT}${value}`,
        `alice:${value}${BCRYPT}`,
      ]) {
        const r = parseHtpasswd(line);
        // A newline splits it into lines: then the hostile line is refused on its own.
        expect(r.ok, `${name}: ${JSON.stringify(line.slice(0, 60))}`).toBe(false);
      }
    }
  });

  it('whatever it accepts is plain words: no space, quote or line break in a name or hash (fast-check)', () => {
    const unit = fc.constantFrom(...'aZ9._@-:$/ \n\r\t#{};"\\é'.split(''));
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.oneof(fc.constantFrom('alice', 'bob'), fc.string({ unit, maxLength: 12 })),
            fc.oneof(fc.constantFrom(BCRYPT, SHA512, SHA256), fc.string({ unit, maxLength: 70 })),
          ),
          { maxLength: 4 },
        ),
        (users) => {
          const r = parseHtpasswd(users.map(([u, h]) => `${u}:${h}`).join('\n'));
          if (!r.ok) return;
          accepted++;
          for (const u of r.value) {
            expect(u.name).toMatch(/^[A-Za-z0-9._@-]{1,64}$/);
            expect(u.hash).toMatch(/^\$[256][aby]?\$[./A-Za-z0-9$=]+$/);
          }
        },
      ),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(50);
  });
});

describe('parsePage', () => {
  it('takes UTF-8 HTML up to 10 KiB; refuses empty, larger and binary pages', () => {
    expect(parsePage('<h1>Sorry — wir sind gleich zurück</h1>').ok).toBe(true);
    expect(parsePage('x'.repeat(MAX_PAGE_BYTES)).ok).toBe(true);
    expect(error(parsePage('x'.repeat(MAX_PAGE_BYTES + 1)))).toMatch(/at most 10240 fit/);
    expect(error(parsePage(' \n'))).toMatch(/empty/);
    expect(error(parsePage('a\u0000b'))).toMatch(/not UTF-8 text/);
    expect(BUILT_IN_MAINTENANCE_PAGE.length).toBeLessThan(MAX_PAGE_BYTES);
  });
});

describe('the hostile corpus against the new label parsers', () => {
  const strict: [string, (raw: string) => FieldResult<unknown>, string][] = [
    ['file name', parsePolicyFileName, 'web-users'],
    ['realm', parseRealm, 'staff-only'],
    ['canary group', parseGroupName, 'web'],
    ['weight', parseWeight, '10'],
  ];
  for (const [field, parse, valid] of strict) {
    it(`${field}: accepts the valid value and refuses it with anything hostile, before or after`, () => {
      expect(parse(valid).ok).toBe(true);
      for (const { name, value: v } of HOSTILE_VALUES) {
        expect(parse(valid + v).ok, `${field} + ${name}`).toBe(false);
        expect(parse(v + valid).ok, `${name} + ${field}`).toBe(false);
      }
    });
  }

  it('a file name is never a path', () => {
    for (const bad of ['../etc/passwd', '/etc/passwd', 'a/b', '.hidden', '..', '.', '', 'a'.repeat(129)]) {
      expect(parsePolicyFileName(bad).ok, bad).toBe(false);
    }
  });

  it('weights are 1 to 256', () => {
    expect(['1', '90', '256'].map((w) => parseWeight(w).ok)).toEqual([true, true, true]);
    expect(['0', '257', '01', '-1', '1.5', ' 1'].map((w) => parseWeight(w).ok)).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

const users = [
  { name: 'alice', hash: BCRYPT },
  { name: 'bob', hash: SHA512 },
];

function routesWithEverything(): Route[] {
  const backend = (name: string, port: number, weight?: number) => ({
    name,
    address: '127.0.0.1',
    port,
    ...(weight !== undefined ? { weight } : {}),
  });
  return [
    route({
      service: 'auth',
      hosts: ['auth.example.com'],
      backends: [backend('auth-1', 8081)],
      policies: { basicAuth: { file: 'web-users', realm: 'staff-only', users }, allowIps: ['10.0.0.0/8'] },
    }),
    route({
      service: 'maint',
      hosts: ['maint.example.com'],
      backends: [backend('maint-1', 8082)],
      policies: { maintenance: true },
    }),
    route({
      service: 'page',
      hosts: ['page.example.com'],
      path: '/shop',
      backends: [backend('page-1', 8083)],
      policies: { errorPage: { file: 'error.html', content: '<h1>"$host" ; } %[src]</h1>\n' }, maintenance: true },
    }),
    route({
      service: 'stable',
      hosts: ['canary.example.com'],
      backends: [backend('stable-1', 8084, 90), backend('canary-1', 8085, 10)],
      canary: {
        group: 'web',
        split: 'weight',
        members: [
          { service: 'stable', weight: 90, backends: 1, share: 90 },
          { service: 'canary', weight: 10, backends: 1, share: 10 },
        ],
      },
    }),
  ];
}

describe('rendering basic auth, pages and canary weights', () => {
  it('puts the users in a userlist and the page in a file, never into the config text', () => {
    const routes = routesWithEverything();
    const haproxy = renderHaproxy(routes, {
      kind: 'haproxy',
      file: 'haproxy.cfg',
      http: { address: '127.0.0.1', port: 8080 },
      maxconn: 1024,
    });
    const cfg = haproxy[0]?.content ?? '';
    expect(haproxy[0]?.private).toBe(true);
    expect(cfg).toContain(`userlist interlock_users_auth__local__0\n    user alice password ${BCRYPT}\n`);
    expect(cfg).toContain('http-request auth realm "staff-only" unless { http_auth(interlock_users_auth__local__0) }');
    expect(cfg).toContain('server stable-1 127.0.0.1:8084 weight 90');
    expect(cfg).toContain('server canary-1 127.0.0.1:8085 weight 10');
    expect(cfg).not.toContain('$host');
    const page = haproxy.find((f) => f.name === 'haproxy.page__local__0.haproxy-page.html');
    expect(page?.content).toContain('"$host"');
    expect(haproxy.find((f) => f.name === 'haproxy.maint__local__0.haproxy-page.html')?.content).toBe(
      BUILT_IN_MAINTENANCE_PAGE,
    );

    const nginx = renderNginx(
      routes,
      { kind: 'nginx', file: 'nginx.conf', http: { address: '127.0.0.1', port: 8081 }, workerConnections: 1024 },
      { runDir: '.' },
    );
    const conf = nginx[0]?.content ?? '';
    expect(nginx[0]?.private).toBeUndefined();
    const htpasswd = nginx.find((f) => f.name === 'nginx.auth__local__0.nginx.htpasswd');
    expect(htpasswd?.private).toBe(true);
    expect(htpasswd?.content).toBe(`alice:${BCRYPT}\nbob:${SHA512}\n`);
    expect(conf).not.toContain(BCRYPT);
    expect(conf).toContain('server 127.0.0.1:8084 weight=90;');
    expect(conf).toContain('return 503;');
    expect(conf).toContain('location = /.interlock-page/page__local__0.html {');
  });

  it('renders nothing new for a route without these policies', () => {
    const r = route({ service: 'plain', hosts: ['plain.example.com'] });
    expect(haproxyPolicyLines(r, { page: 'x.html', users: 'u' })).toEqual([]);
    expect(nginxPolicyLines(r, { upstream: 'u', websocket: false, https: false, files: { page: 'x' } })).toEqual([]);
  });

  itWithTools('both proxies accept the files', ['haproxy', 'nginx'], async () => {
    const routes = routesWithEverything();
    const haproxy = renderHaproxy(routes, {
      kind: 'haproxy',
      file: 'haproxy.cfg',
      http: { address: '127.0.0.1', port: 8080 },
      maxconn: 1024,
    });
    const nginx = renderNginx(
      routes,
      { kind: 'nginx', file: 'nginx.conf', http: { address: '127.0.0.1', port: 8081 }, workerConnections: 1024 },
      { runDir: '.' },
    );
    const scratch = await scratchDir([...haproxy, ...nginx]);
    try {
      const h = haproxyCheck(scratch.dir);
      expect(h.ok, h.output).toBe(true);
      const n = nginxCheck(scratch.dir);
      expect(n.ok, n.output).toBe(true);
    } finally {
      await scratch.remove();
    }
  });
});
