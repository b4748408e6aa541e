import { describe, expect, it } from 'vitest';
import {
  type FieldResult,
  isUnderPath,
  parseAddress,
  parseBoolean,
  parseCookieName,
  parseDurationMs,
  parseEnum,
  parseFileName,
  parseHostname,
  parseIdentifier,
  parseNetworkName,
  parsePath,
  parsePort,
  parseRawDirective,
  parseRedirectSource,
  parseRedirectTarget,
  quoteValue,
} from '../../src/parse/fields.ts';
import { HOSTILE_VALUES } from '../fixtures/hostile-values.ts';

function value<T>(r: FieldResult<T>): T | undefined {
  return r.ok ? r.value : undefined;
}

describe('parseHostname', () => {
  it.each([
    ['example.com', 'example.com'],
    ['Shop.Example.COM', 'shop.example.com'],
    ['localhost', 'localhost'],
    ['*.example.com', '*.example.com'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['1.2.3.4', '1.2.3.4'],
    [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
    [`${'abcdefghi.'.repeat(25)}com`, `${'abcdefghi.'.repeat(25)}com`],
  ])('accepts %s', (raw, expected) => {
    expect(value(parseHostname(raw))).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    ['-a.com', 'leading hyphen'],
    ['a-.com', 'trailing hyphen'],
    ['a..com', 'empty label'],
    ['example.com.', 'trailing dot'],
    ['.example.com', 'leading dot'],
    ['a_b.com', 'underscore'],
    ['example.com:80', 'port'],
    ['*', 'bare wildcard'],
    ['a.*.com', 'inner wildcard'],
    ['**.example.com', 'double wildcard'],
    [`${'a'.repeat(64)}.com`, 'label of 64'],
    [`${'abcdefghi.'.repeat(25)}comx`, 'longer than 253'],
    ['bücher.example', 'IDN'],
    ['\u212aelvin.example', 'Kelvin sign that lower-cases to k'],
    ['example.com\nserver x', 'newline'],
    ['exa mple.com', 'space'],
  ])('rejects %s (%s)', (raw) => {
    expect(parseHostname(raw).ok).toBe(false);
  });

  it.each([
    ['*.com', 'public suffix'],
    ['*.io', 'public suffix'],
    ['*.co.uk', 'public suffix'],
    ['*.github.io', 'public suffix'],
    ['*.COM', 'public suffix'],
    ['*.local', 'one label'],
    ['*.internal', 'one label'],
    ['*.zz-unknown', 'one label'],
  ])('refuses the broad wildcard %s (%s) unless allowed', (raw) => {
    const r = parseHostname(raw);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error).toMatch(/every host/);
    expect(r.ok ? '' : r.fix).toContain('allowBroadWildcards: true');
    expect(value(parseHostname(raw, { broadWildcards: true }))).toBe(raw.toLowerCase());
  });

  it.each(['*.example.com', '*.eu.example.co.uk', '*.apps.corp.internal', '*.me.github.io'])(
    'accepts the wildcard %s under a registrable domain',
    (raw) => {
      expect(value(parseHostname(raw))).toBe(raw);
    },
  );

  it('refuses a wildcard where none is allowed', () => {
    expect(parseHostname('*.example.com', { wildcard: false }).ok).toBe(false);
  });

  it('tells a user with a non-ASCII name to write punycode', () => {
    const r = parseHostname('bücher.example');
    expect(r.ok ? '' : r.fix).toContain('punycode');
  });
});

describe('parsePort', () => {
  it.each([
    ['1', 1],
    ['80', 80],
    ['65535', 65535],
  ])('accepts %s', (raw, expected) => {
    expect(value(parsePort(raw))).toBe(expected);
  });
  it.each(['0', '65536', '080', '+80', '80.0', '8e3', ' 80', '80 ', '0x50', '', '99999999', '٨٠'])(
    'rejects %j',
    (raw) => {
      expect(parsePort(raw).ok).toBe(false);
    },
  );
});

describe('parsePath', () => {
  it.each([
    ['/', '/'],
    ['/api', '/api'],
    ['/api/', '/api'],
    ['/api/v1.0/items', '/api/v1.0/items'],
    ['/a~b_c-d:e@f!g,h+i=j', '/a~b_c-d:e@f!g,h+i=j'],
    ['/.well-known/acme', '/.well-known/acme'],
  ])('accepts %s as %s', (raw, expected) => {
    expect(value(parsePath(raw))).toBe(expected);
  });
  it.each([
    ['', 'empty'],
    ['api', 'relative'],
    ['/a//b', 'empty segment'],
    ['/a/../b', 'dot-dot'],
    ['/..', 'dot-dot at end'],
    ['/a/./b', 'dot segment'],
    ['/a;b', 'semicolon'],
    ['/a b', 'space'],
    ['/a#b', 'hash'],
    ['/a%2e', 'percent'],
    ['/a?x=1', 'query'],
    ['/$uri', 'dollar'],
    ['/a{b}', 'braces'],
    ["/a'b", 'quote'],
    ['/a\\b', 'backslash'],
    ['/é', 'non-ASCII'],
    ['/a\u0000', 'NUL'],
    [`/${'a'.repeat(1024)}`, 'too long'],
  ])('rejects %j (%s)', (raw) => {
    expect(parsePath(raw).ok).toBe(false);
  });
  it('keeps a 1024-character path', () => {
    expect(parsePath(`/${'a'.repeat(1023)}`).ok).toBe(true);
  });
  it('tells where paths nest', () => {
    expect(isUnderPath('/api/ws', '/api')).toBe(true);
    expect(isUnderPath('/api', '/api')).toBe(true);
    expect(isUnderPath('/apiary', '/api')).toBe(false);
    expect(isUnderPath('/anything', '/')).toBe(true);
  });
});

describe('parseBoolean', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['Yes', true],
    ['1', true],
    ['false', false],
    ['No', false],
    ['0', false],
  ])('reads %s as %s', (raw, expected) => {
    expect(value(parseBoolean(raw))).toBe(expected);
  });
  it.each(['', 'on', 'off', 'y', 'true ', ' true', 'truee', '2', 'enabled'])('rejects %j', (raw) => {
    expect(parseBoolean(raw).ok).toBe(false);
  });
});

describe('small words', () => {
  it('parses enums case-insensitively and lists the choices when wrong', () => {
    expect(value(parseEnum('LeastConn', ['roundrobin', 'leastconn'] as const))).toBe('leastconn');
    const r = parseEnum('fastest', ['roundrobin', 'leastconn'] as const);
    expect(r.ok ? '' : r.fix).toBe('write one of: roundrobin, leastconn');
  });
  it('parses cookie names from the token subset', () => {
    expect(value(parseCookieName('SESSION'))).toBe('SESSION');
    expect(value(parseCookieName('connect.sid'))).toBe('connect.sid');
    for (const bad of ['', 'a b', 'a;b', 'a=b', 'a"b', '$x', 'a'.repeat(65), 'sess#1', 'café']) {
      expect(parseCookieName(bad).ok, bad).toBe(false);
    }
  });
  it('parses durations in whole milliseconds within bounds', () => {
    expect(value(parseDurationMs('5000'))).toBe(5000);
    for (const bad of ['5s', '99', '3600001', '1.5', '-100', '', '5000ms']) {
      expect(parseDurationMs(bad).ok, bad).toBe(false);
    }
  });
  it('parses network, file and identifier names', () => {
    expect(value(parseNetworkName('my_net.1-a'))).toBe('my_net.1-a');
    expect(parseNetworkName('-net').ok).toBe(false);
    expect(value(parseFileName('example.com.pem'))).toBe('example.com.pem');
    for (const bad of ['../etc/passwd', '/etc/ssl/x.pem', '.hidden', 'a/b', '..']) {
      expect(parseFileName(bad).ok, bad).toBe(false);
    }
    expect(value(parseIdentifier('shop-web-1'))).toBe('shop-web-1');
    expect(parseIdentifier('a b').ok).toBe(false);
  });
  it('parses backend addresses', () => {
    expect(value(parseAddress('10.0.1.7'))).toBe('10.0.1.7');
    expect(value(parseAddress('FD00::1'))).toBe('fd00::1');
    expect(value(parseAddress('db.internal'))).toBe('db.internal');
    for (const bad of ['10.0.1.256', 'fe80::1%eth0', '*.x.com', '10.0.1.7\nserver x', '10.0.1.7:80']) {
      expect(parseAddress(bad).ok, bad).toBe(false);
    }
  });
});

describe('redirects', () => {
  it('normalizes targets', () => {
    expect(value(parseRedirectTarget('HTTPS://New.Example.com/'))).toBe('https://new.example.com');
    expect(value(parseRedirectTarget('http://new.example.com:8080/landing/'))).toBe(
      'http://new.example.com:8080/landing',
    );
  });
  it.each([
    'ftp://x.com',
    'https://',
    '//x.com',
    'x.com',
    'https://x.com/?q=1',
    'https://x.com/#top',
    'https://user@x.com',
    'https://x.com:99999',
    'javascript:alert(1)',
    'https://*.x.com',
  ])('rejects target %s', (raw) => {
    expect(parseRedirectTarget(raw).ok).toBe(false);
  });
  it('reads sources with and without a scheme', () => {
    expect(value(parseRedirectSource('http://Old.Example.com'))).toEqual({
      scheme: 'http',
      host: 'old.example.com',
      text: 'http://old.example.com',
    });
    expect(value(parseRedirectSource('old.example.com'))).toEqual({ host: 'old.example.com', text: 'old.example.com' });
    expect(parseRedirectSource('http://old.example.com/path').ok).toBe(false);
  });
});

describe('parseRawDirective', () => {
  it('accepts one backend line', () => {
    expect(value(parseRawDirective('option forwardfor'))).toBe('option forwardfor');
    expect(value(parseRawDirective('  timeout server 30s '))).toBe('timeout server 30s');
  });
  it.each([
    ['option x\nbackend evil', 'newline'],
    ['option x # y', 'comment'],
    ['option x; y', 'semicolon'],
    ['http-request set-header X "a b"', 'quotes'],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: HAProxy's own `${VAR}` expansion is what is tested
    ['http-response set-header X ${SECRET}', 'environment expansion'],
    ['option x \\', 'backslash continuation'],
    ['frontend evil', 'new section'],
    ['backend other', 'new section'],
    ['listen evil', 'new section'],
    ['option x {', 'brace'],
    ['\toption x', 'tab'],
    ['', 'empty'],
    [`option ${'a'.repeat(300)}`, 'too long'],
  ])('rejects %j (%s)', (raw) => {
    expect(parseRawDirective(raw).ok).toBe(false);
  });
});

describe('quoteValue', () => {
  it('shows any hostile value on one printable line', () => {
    for (const { name, value: v } of HOSTILE_VALUES) {
      const q = quoteValue(v);
      expect(q, name).toMatch(/^[\x20-\x7e]+$/);
      expect(q.length, name).toBeLessThan(140);
    }
    expect(quoteValue('a\nb')).toBe('"a\\nb"');
    expect(quoteValue('\u2028')).toBe('"\\u2028"');
  });
});

describe('the hostile corpus against every string parser', () => {
  const parsers: [string, (raw: string) => FieldResult<unknown>, string][] = [
    ['hostname', parseHostname, 'shop.example.com'],
    ['port', parsePort, '8080'],
    ['path', parsePath, '/api'],
    ['boolean', parseBoolean, 'true'],
    ['cookie', parseCookieName, 'SESSION'],
    ['duration', parseDurationMs, '5000'],
    ['network', parseNetworkName, 'appnet'],
    ['file', parseFileName, 'cert.pem'],
    ['identifier', parseIdentifier, 'local'],
    ['redirect target', parseRedirectTarget, 'https://x.example.com'],
    ['redirect source', parseRedirectSource, 'http://x.example.com'],
    ['address', parseAddress, '10.0.0.1'],
  ];
  for (const [field, parse, valid] of parsers) {
    it(`${field}: accepts the valid value and refuses it with anything hostile, before or after`, () => {
      expect(parse(valid).ok).toBe(true);
      for (const { name, value: v } of HOSTILE_VALUES) {
        expect(parse(valid + v).ok, `${field} + ${name}`).toBe(false);
        expect(parse(v + valid).ok, `${name} + ${field}`).toBe(false);
      }
    });
  }

  it('raw directive: anything hostile is refused, except what stays one plain line (trusted by opt-in)', () => {
    for (const { name, value: v } of HOSTILE_VALUES) {
      for (const raw of [`option forwardfor${v}`, `${v}option forwardfor`]) {
        const r = parseRawDirective(raw);
        if (r.ok) expect(r.value, name).toMatch(/^[a-z][a-z0-9-]*( [\x21-\x7e]+)*$/);
        if (r.ok) expect(r.value, name).not.toMatch(/[{};#\\$"'`]/);
      }
      if (!['space'].includes(name)) expect(parseRawDirective(`option forwardfor${v}`).ok, name).toBe(false);
    }
  });
});
