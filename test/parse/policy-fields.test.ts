/**
 * The traffic-policy parsers (issue 14): what each accepts and normalizes, the hostile corpus
 * before and after a valid value, generated input (fast-check), and the hostile snapshot rendered
 * for both proxies and checked by the real ones.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mapSnapshot } from '../../src/cluster/snapshot-map.ts';
import type { FieldResult } from '../../src/parse/fields.ts';
import {
  hstsHeader,
  parseBurst,
  parseCidr,
  parseHeaderName,
  parseHeaderPair,
  parseHeaderValue,
  parseHsts,
  parseMediaType,
  parseRatePerSecond,
} from '../../src/parse/policy-fields.ts';
import { haproxyPolicyLines, nginxPolicyLines } from '../../src/render/policies.ts';
import { buildRoutes } from '../../src/routes/build.ts';
import { HOSTILE_CLUSTER, HOSTILE_VALUES, hostileCases, hostileSnapshot } from '../fixtures/hostile-values.ts';
import { route } from '../fixtures/routes/base.ts';
import { renderHaproxy, renderNginx } from '../helpers/render.ts';
import { haproxyCheck, itWithTools, nginxCheck, scratchDir } from '../render/proxy-check.ts';

const value = <T>(r: FieldResult<T>): T | undefined => (r.ok ? r.value : undefined);

describe('parseCidr', () => {
  it('accepts IPv4 and IPv6 networks and addresses, normalized with the prefix written', () => {
    expect(value(parseCidr('10.0.0.0/8'))).toBe('10.0.0.0/8');
    expect(value(parseCidr('127.0.0.1'))).toBe('127.0.0.1/32');
    expect(value(parseCidr('0.0.0.0/0'))).toBe('0.0.0.0/0');
    expect(value(parseCidr('2001:DB8:0:0::/32'))).toBe('2001:db8::/32');
    expect(value(parseCidr('::1'))).toBe('::1/128');
    expect(value(parseCidr('::/0'))).toBe('::/0');
    expect(value(parseCidr('fd00:1:2:3::/64'))).toBe('fd00:1:2:3::/64');
  });
  it('refuses bits after the prefix, naming the network', () => {
    const r = parseCidr('10.0.0.1/8');
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.fix).toContain('10.0.0.0/8');
    const v6 = parseCidr('2001:db8::1/32');
    expect(v6.ok ? '' : v6.fix).toContain('2001:db8::/32');
    expect(parseCidr('10.0.0.128/25').ok).toBe(true);
    expect(parseCidr('10.0.0.64/25').ok).toBe(false);
  });
  it('refuses what is not an address', () => {
    for (const bad of [
      '',
      '10.0.0.0/33',
      '::/129',
      '10.0.0',
      '256.0.0.1',
      'example.com',
      'fe80::1%eth0',
      '10.0.0.0/8/8',
    ]) {
      expect(parseCidr(bad).ok, bad).toBe(false);
    }
  });
});

describe('headers', () => {
  it('takes a name and a value, and refuses names interlock manages', () => {
    expect(value(parseHeaderPair('X-Frame-Options: DENY'))).toEqual({ name: 'X-Frame-Options', value: 'DENY' });
    expect(value(parseHeaderPair("Content-Security-Policy: default-src 'self'; img-src *"))?.value).toBe(
      "default-src 'self'; img-src *",
    );
    for (const reserved of ['Strict-Transport-Security', 'x-request-id', 'X-Forwarded-For', 'Host', 'Connection']) {
      const r = parseHeaderName(reserved);
      expect(r.ok, reserved).toBe(false);
    }
    expect(
      parseHeaderName('X-Request-Id').ok ? '' : (parseHeaderName('X-Request-Id') as { fix: string }).fix,
    ).toContain('request_id');
    for (const bad of ['X_Under', 'X Space', '-X', 'X-', '', 'a'.repeat(65), 'X:Y']) {
      expect(parseHeaderName(bad).ok, bad).toBe(false);
    }
    for (const bad of ['', ' lead', 'trail ', 'a"b', 'a\\b', 'a$b', 'a\nb', 'a\tb', 'é', 'x'.repeat(1025)]) {
      expect(parseHeaderValue(bad).ok, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('HSTS, rate, burst, media types', () => {
  it('parses HSTS into its parts and writes it back canonically', () => {
    const h = value(parseHsts('max-age=31536000;includesubdomains; PRELOAD'));
    expect(h).toEqual({ maxAge: 31536000, includeSubDomains: true, preload: true });
    expect(hstsHeader(h ?? { maxAge: 0 })).toBe('max-age=31536000; includeSubDomains; preload');
    expect(value(parseHsts('600'))).toEqual({ maxAge: 600 });
    for (const bad of ['', 'preload', 'max-age=600; preload', 'max-age=99999999999', 'max-age=1; max-age=2', 'x']) {
      expect(parseHsts(bad).ok, bad).toBe(false);
    }
  });
  it('takes whole numbers in range', () => {
    expect(value(parseRatePerSecond('10'))).toBe(10);
    expect(value(parseRatePerSecond('10r/s'))).toBe(10);
    expect(value(parseBurst('0'))).toBe(0);
    for (const bad of ['0', '-1', '1.5', '100001', '1e3', '']) expect(parseRatePerSecond(bad).ok, bad).toBe(false);
    for (const bad of ['-1', '01', '100001', '']) expect(parseBurst(bad).ok, bad).toBe(false);
    expect(value(parseMediaType('Image/SVG+xml'))).toBe('image/svg+xml');
    for (const bad of ['text', 'text/*', '*/*', 'text/html; charset=utf-8', '']) {
      expect(parseMediaType(bad).ok, bad).toBe(false);
    }
  });
});

describe('the hostile corpus against the policy parsers', () => {
  const strict: [string, (raw: string) => FieldResult<unknown>, string][] = [
    ['cidr', parseCidr, '10.0.0.0/8'],
    ['cidr v6', parseCidr, '2001:db8::/32'],
    ['rate', parseRatePerSecond, '10'],
    ['burst', parseBurst, '20'],
    ['header name', parseHeaderName, 'X-Env'],
    ['hsts', parseHsts, 'max-age=600'],
    ['media type', parseMediaType, 'text/html'],
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
  it('header value: keeps printable text for the renderers to quote, refuses the rest', () => {
    for (const { name, value: v } of HOSTILE_VALUES) {
      for (const raw of [`prod${v}`, `${v}prod`]) {
        const r = parseHeaderValue(raw);
        if (r.ok) expect(r.value, name).toMatch(/^[\x21-\x7e][\x20-\x7e]*$/);
        if (r.ok) expect(r.value, name).not.toMatch(/["\\$]/);
      }
      const refused = /[^\x20-\x7e"\\$]|["\\$]/.test(v) || v.length > 1000;
      expect(parseHeaderValue(`prod${v}`).ok, name).toBe(!refused);
    }
  });
});

describe('policy parsers on generated input (fast-check)', () => {
  it('an accepted CIDR is normalized: parsing it again gives it back', () => {
    const v4 = fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, n]) => `${a}/${n}`);
    const v6 = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([a, n]) => `${a}/${n}`);
    fc.assert(
      fc.property(fc.oneof(v4, v6, fc.string(), fc.ipV4(), fc.ipV6()), (raw) => {
        const r = parseCidr(raw);
        if (!r.ok) return;
        expect(r.value).toMatch(/^[0-9a-f.:]+\/[0-9]{1,3}$/);
        expect(value(parseCidr(r.value))).toBe(r.value);
      }),
      { numRuns: 2000 },
    );
  });
  it('whatever header text is accepted renders as one quoted line in each proxy', () => {
    let accepted = 0;
    const text = fc.string({ unit: fc.constantFrom(...' ;{}#\'"\\$%`aZ9-:\n\r\t\u2028é'.split('')), maxLength: 30 });
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom('X-Env', 'X-Request-Id', 'Cache-Control'), fc.string({ maxLength: 20 })),
        text,
        (name, raw) => {
          const pair = parseHeaderPair(`${name}: ${raw}`);
          if (!pair.ok) return;
          accepted++;
          const r = route({
            service: 'fuzz',
            hosts: ['fuzz.example.com'],
            policies: {
              requestHeaders: [{ action: 'set', ...pair.value }],
              responseHeaders: [{ action: 'add', ...pair.value }],
            },
          });
          const lines = [
            ...haproxyPolicyLines(r),
            ...nginxPolicyLines(r, { upstream: 'fuzz__local__0', websocket: false, https: false }),
          ];
          for (const line of lines) {
            expect(line).toMatch(/^[\x20-\x7e]+$/);
            // Exactly one double-quoted string, holding no quote, backslash or `$` of its own.
            if (line.includes(` ${pair.value.name} "`)) expect(line).toMatch(/^[^"]* "[^"\\$]*"( always;|;|)$/);
          }
        },
      ),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('the hostile snapshot, rendered', () => {
  const mapped = mapSnapshot(hostileSnapshot(), { cluster: HOSTILE_CLUSTER });
  const { routes } = buildRoutes(
    [mapped.state],
    [
      { kind: 'interlock', allowRawDirectives: false },
      { kind: 'docker-lb', allowRawDirectives: false },
    ],
  );
  const quoted = hostileCases().filter((c) => c.expect === 'routed-quoted');

  itWithTools(
    'both proxies accept the files, and the quoted header values are in them verbatim',
    ['haproxy', 'nginx'],
    async () => {
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
        const cfg = haproxy.find((f) => f.name === 'haproxy.cfg')?.content ?? '';
        const conf = nginx.find((f) => f.name === 'nginx.conf')?.content ?? '';
        for (const text of [cfg, conf]) {
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a hostile value, not a template
          for (const marker of ['evil', 'pwned', '203.0.113.66', '${HOME}', '$host']) {
            expect(text.includes(marker), marker).toBe(false);
          }
        }
        for (const c of quoted) {
          const v = c.value.slice(c.value.indexOf(':') + 1).replace(/^ +/, '');
          expect(cfg, c.label).toContain(`"${v.replaceAll('%', '%%')}"`);
          expect(conf, c.label).toContain(`"${v}"`);
        }
        const h = haproxyCheck(scratch.dir);
        expect(h.ok, h.output).toBe(true);
        const n = nginxCheck(scratch.dir);
        expect(n.ok, n.output).toBe(true);
      } finally {
        await scratch.remove();
      }
    },
  );
});
