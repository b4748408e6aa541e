/**
 * Specialised writers for the repeated sections of the built-in templates (issue 12): HAProxy's
 * `backends`, Nginx's `upstreams` and `servers`. At 10,000 routes these sections are nearly the
 * whole file; the generic walker (./mustache.ts) looks every name up on a context stack and
 * checks each value's kind, these read the view's fields directly.
 *
 * Each writer is tied to the exact text of its section in the shipped template (BODY below): the
 * renderer uses it only where a template's top-level section has that very text, so an override
 * (or a changed built-in template) renders through the generic walker, unchanged. The writers'
 * output equals the walker's byte for byte (test/render/fast-sections.test.ts: the goldens and a
 * generated 1,000-service snapshot; a test also holds BODY equal to the shipped templates).
 * Pure: no file system, clock or environment.
 */
import type { HaproxyBackendView } from './haproxy.ts';
import type { FastSection } from './mustache.ts';
import type { NginxLocationView, NginxServerView, NginxUpstreamView } from './nginx.ts';
import { flattened } from './types.ts';

/**
 * Where a section item's view comes from, for the writers' memo: `of` is the object the item is
 * drawn from (a route; routes are never changed once built, and the watch daemon's RouteCache
 * hands an unchanged service's routes to the next render as the same objects), `tag` everything
 * else the item's text depends on (its name, the output's settings it reads). A sourced item is
 * written once per (of, tag) and its text reused: at 10,000 services a label change re-renders
 * one backend, not 10,000. An item without a source is written every time. A symbol: templates
 * cannot see it.
 */
export const VIEW_SOURCE: unique symbol = Symbol('interlock.view-source');

export interface ViewSource {
  of: object;
  tag: string;
}

/** Texts kept per source object: one per tag (an output), a few outputs at most. */
const TAGS_PER_SOURCE = 4;

/** `write` for each item of a section, with the texts of sourced items kept (see VIEW_SOURCE). */
function memoized(write: (item: unknown) => string): (items: readonly unknown[]) => string {
  // Per source object: [tag, text, tag, text, ...] (an array, not a Map: 10,000 of them).
  const texts = new WeakMap<object, string[]>();
  return (items) => {
    let out = '';
    for (const item of items) {
      const source = (item as { [VIEW_SOURCE]?: ViewSource })[VIEW_SOURCE];
      if (source === undefined) {
        // Flat before it joins the section: its pieces then die young instead of riding the
        // section's rope to the end of the render, copied by every young-generation collection.
        out += flattened(write(item));
        continue;
      }
      const kept = texts.get(source.of);
      let text: string | undefined;
      if (kept !== undefined) for (let i = 0; i < kept.length; i += 2) if (kept[i] === source.tag) text = kept[i + 1];
      if (text === undefined) {
        text = flattened(write(item));
        const tag = flattened(source.tag);
        if (kept === undefined) texts.set(source.of, [tag, text]);
        else if (kept.length >= 2 * TAGS_PER_SOURCE) kept.splice(0, kept.length, tag, text);
        else kept.push(tag, text);
      }
      out += text;
    }
    return out;
  };
}

/** `{{name}}`: nothing for null and undefined, else the value as a string. */
function text(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

/** The built-in templates' section texts, between the opening and the closing tag. */
export const BODY = {
  haproxyBackends:
    '\n\n# {{about}}\nbackend {{name}}\n    mode {{mode}}\n    balance {{balance}}\n{{#hashType}}\n    hash-type {{.}}\n{{/hashType}}\n{{#healthCheck}}\n    option httpchk\n    http-check send {{send}}\n    http-check expect status {{expectStatus}}\n{{/healthCheck}}\n{{#cookie}}\n    cookie {{name}} prefix\n{{/cookie}}\n{{#tunnelTimeout}}\n    timeout tunnel {{.}}\n{{/tunnelTimeout}}\n{{#sslOnly}}\n    http-request redirect location {{location}} code 301 unless { ssl_fc }\n    http-response set-header Strict-Transport-Security "{{hsts}}" if { ssl_fc }\n{{/sslOnly}}\n{{#stripPath}}\n    http-request replace-path {{regex}} {{replacement}}\n{{/stripPath}}\n{{#policyLines}}\n    {{.}}\n{{/policyLines}}\n{{#rawOptions}}\n    {{.}}\n{{/rawOptions}}\n{{#servers}}\n    server {{name}} {{address}}{{#params}} {{params}}{{/params}}\n{{/servers}}\n',
  nginxUpstreams:
    '\n\n    # {{about}}\n    upstream {{name}} {\n{{#balance}}\n        {{.}};\n{{/balance}}\n{{#servers}}\n        server {{address}}{{#params}} {{params}}{{/params}};\n{{/servers}}\n        keepalive {{keepalive}};\n    }\n',
  nginxServers:
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Nginx's `$` before a mustache tag, not a JS placeholder
    '\n\n    server {\n        listen {{listen}};\n        server_name {{serverNames}};\n{{#certificate}}\n        ssl_certificate {{cert}};\n        ssl_certificate_key {{key}};\n{{/certificate}}\n{{#rejectHandshake}}\n        ssl_reject_handshake on;\n{{/rejectHandshake}}\n{{#redirect}}\n        return {{.}};\n{{/redirect}}\n{{#acme}}\n\n        # ACME HTTP-01: the controller answers the challenges of every host\n        location ^~ {{path}} {\n            proxy_pass {{pass}};\n        }\n{{/acme}}\n{{#locations}}\n\n        location {{match}} {\n{{#internalPage}}\n            # a route\'s error / maintenance page\n            internal;\n            default_type "text/html; charset=utf-8";\n            add_header Cache-Control no-store always;\n            alias {{file}};\n{{/internalPage}}\n{{#redirect}}\n            return 301 {{.}};\n{{/redirect}}\n{{#unavailable}}\n            return 503;\n{{/unavailable}}\n{{#proxy}}\n            # {{about}}\n            proxy_pass {{pass}};\n{{#websocket}}\n            proxy_set_header Host $http_host;\n            proxy_set_header X-Real-IP $remote_addr;\n            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            proxy_set_header X-Forwarded-Proto $scheme;\n            proxy_set_header Upgrade $http_upgrade;\n            proxy_set_header Connection $connection_upgrade;\n            proxy_read_timeout 1h;\n            proxy_send_timeout 1h;\n{{/websocket}}\n{{#verifyTls}}\n            proxy_ssl_server_name on;\n            proxy_ssl_name $host;\n            proxy_ssl_verify on;\n            proxy_ssl_trusted_certificate {{trustedCertificate}};\n{{/verifyTls}}\n{{#hsts}}\n            add_header Strict-Transport-Security "{{.}}" always;\n{{/hsts}}\n{{#setCookie}}\n            add_header Set-Cookie ${{.}};\n{{/setCookie}}\n{{#policyLines}}\n            {{.}}\n{{/policyLines}}\n{{/proxy}}\n        }\n{{/locations}}\n    }\n',
} as const;

function haproxyBackend(item: unknown): string {
  const b = item as HaproxyBackendView;
  let out = `\n# ${text(b.about)}\nbackend ${text(b.name)}\n    mode ${text(b.mode)}\n    balance ${text(b.balance)}\n`;
  const hashType = b.hashType;
  if (hashType) out += `    hash-type ${text(hashType)}\n`;
  const check = b.healthCheck;
  if (check) {
    out += `    option httpchk\n    http-check send ${text(check.send)}\n    http-check expect status ${text(check.expectStatus)}\n`;
  }
  const cookie = b.cookie;
  if (cookie) out += `    cookie ${text(cookie.name)} prefix\n`;
  const tunnel = b.tunnelTimeout;
  if (tunnel) out += `    timeout tunnel ${text(tunnel)}\n`;
  const sslOnly = b.sslOnly;
  if (sslOnly) {
    out += `    http-request redirect location ${text(sslOnly.location)} code 301 unless { ssl_fc }\n`;
    out += `    http-response set-header Strict-Transport-Security "${text(sslOnly.hsts)}" if { ssl_fc }\n`;
  }
  const strip = b.stripPath;
  if (strip) out += `    http-request replace-path ${text(strip.regex)} ${text(strip.replacement)}\n`;
  for (const line of b.policyLines) out += `    ${text(line)}\n`;
  for (const line of b.rawOptions) out += `    ${text(line)}\n`;
  for (const s of b.servers) {
    out += `    server ${text(s.name)} ${text(s.address)}${s.params ? ` ${text(s.params)}` : ''}\n`;
  }
  return out;
}

function nginxUpstream(item: unknown): string {
  const u = item as NginxUpstreamView;
  let out = `\n    # ${text(u.about)}\n    upstream ${text(u.name)} {\n`;
  const balance = u.balance;
  if (balance) out += `        ${text(balance)};\n`;
  for (const s of u.servers) out += `        server ${text(s.address)}${s.params ? ` ${text(s.params)}` : ''};\n`;
  return `${out}        keepalive ${text(u.keepalive)};\n    }\n`;
}

/** The proxy headers a websocket location sets again (a location's own proxy_set_header drops the http block's). */
const WEBSOCKET_LINES = [
  'proxy_set_header Host $http_host;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header Upgrade $http_upgrade;',
  'proxy_set_header Connection $connection_upgrade;',
  'proxy_read_timeout 1h;',
  'proxy_send_timeout 1h;',
]
  .map((l) => `            ${l}\n`)
  .join('');

function nginxLocation(l: NginxLocationView): string {
  let out = `\n        location ${text(l.match)} {\n`;
  const page = l.internalPage;
  if (page) {
    out += "            # a route's error / maintenance page\n            internal;\n";
    out +=
      '            default_type "text/html; charset=utf-8";\n            add_header Cache-Control no-store always;\n';
    out += `            alias ${text(page.file)};\n`;
  }
  if (l.redirect) out += `            return 301 ${text(l.redirect)};\n`;
  if (l.unavailable) out += '            return 503;\n';
  const p = l.proxy;
  if (p) {
    // `{{about}}` inside `{{#proxy}}` is the location's: the proxy object has none.
    out += `            # ${text(l.about)}\n            proxy_pass ${text(p.pass)};\n`;
    if (p.websocket) out += WEBSOCKET_LINES;
    const verify = p.verifyTls;
    if (verify) {
      out +=
        '            proxy_ssl_server_name on;\n            proxy_ssl_name $host;\n            proxy_ssl_verify on;\n';
      out += `            proxy_ssl_trusted_certificate ${text(verify.trustedCertificate)};\n`;
    }
    if (p.hsts) out += `            add_header Strict-Transport-Security "${text(p.hsts)}" always;\n`;
    if (p.setCookie) out += `            add_header Set-Cookie $${text(p.setCookie)};\n`;
    for (const line of p.policyLines) out += `            ${text(line)}\n`;
  }
  return `${out}        }\n`;
}

function nginxServers(items: readonly unknown[]): string {
  let out = '';
  for (const item of items) {
    const s = item as NginxServerView;
    let t = `\n    server {\n        listen ${text(s.listen)};\n        server_name ${text(s.serverNames)};\n`;
    const cert = s.certificate;
    if (cert) t += `        ssl_certificate ${text(cert.cert)};\n        ssl_certificate_key ${text(cert.key)};\n`;
    if (s.rejectHandshake) t += '        ssl_reject_handshake on;\n';
    if (s.redirect) t += `        return ${text(s.redirect)};\n`;
    const acme = s.acme;
    if (acme) {
      t += '\n        # ACME HTTP-01: the controller answers the challenges of every host\n';
      t += `        location ^~ ${text(acme.path)} {\n            proxy_pass ${text(acme.pass)};\n        }\n`;
    }
    for (const l of s.locations) t += nginxLocation(l);
    // One flat string per server block (see `flattened`): the 20,000 blocks' pieces die young.
    out += flattened(`${t}    }\n`);
  }
  return out;
}

/** For renderHaproxy: the `backends` section of the built-in template. */
export const HAPROXY_FAST: readonly FastSection[] = [
  { name: 'backends', body: BODY.haproxyBackends, write: memoized(haproxyBackend) },
];

/** For renderNginx: the `upstreams` and `servers` sections of the built-in template's http block. */
export const NGINX_FAST: readonly FastSection[] = [
  { name: 'upstreams', body: BODY.nginxUpstreams, write: memoized(nginxUpstream) },
  { name: 'servers', body: BODY.nginxServers, write: nginxServers },
];
