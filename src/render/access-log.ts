/**
 * Access-log formats (issue 14, listener options): a small set of named formats rather than free
 * text, each written for both proxies. Pure.
 *
 * - `common`: the Common Log Format, `client - user [time] "request line" status bytes`.
 * - `combined`: `common` plus the quoted Referer and User-Agent.
 * - `json`: one JSON object a line: time (seconds since 1970, with milliseconds), client, method,
 *   uri, protocol, status, bytes, duration_ms, host, referer, user_agent.
 *
 * Where the proxies differ (`validate` warns; README, Traffic policies): HAProxy's byte count is
 * the whole response with its headers, Nginx's the body only; HAProxy writes `-` for the user
 * (it does not log the basic-auth user), and its time is when the request came in, Nginx's when
 * the response went out. HAProxy logs to stderr with its other messages; Nginx to
 * `<runDir>/access.log`.
 */

import type { AccessLogFormat } from '../parse/policy-fields.ts';

/** Frontend lines of the HAProxy HTTP frontend: the log target, header captures, the format. */
export function haproxyAccessLogLines(format: AccessLogFormat): string[] {
  const log = 'log stderr format raw local0 info';
  const common = `%ci - - [%trl] %{+Q}r %ST %B`;
  // Headers are gone when the log line is written: captured while the request is read
  // (capture.req.hdr(N) in the order of the capture lines).
  const referer = 'http-request capture req.hdr(Referer) len 512';
  const agent = 'http-request capture req.hdr(User-Agent) len 512';
  const host = 'http-request capture req.hdr(Host) len 256';
  switch (format) {
    case 'common':
      return [log, `log-format '${common}'`];
    case 'combined':
      return [log, referer, agent, `log-format '${common} %{+Q}[capture.req.hdr(0)] %{+Q}[capture.req.hdr(1)]'`];
    case 'json': {
      const text = (sample: string) => `"%[${sample},json(utf8s)]"`;
      const json = [
        '"time":%Ts.%ms',
        '"client":"%ci"',
        '"method":"%HM"',
        `"uri":${text('capture.req.uri')}`,
        '"protocol":"%HV"',
        '"status":%ST',
        '"bytes":%B',
        '"duration_ms":%Ta',
        `"host":${text('capture.req.hdr(2)')}`,
        `"referer":${text('capture.req.hdr(0)')}`,
        `"user_agent":${text('capture.req.hdr(1)')}`,
      ].join(',');
      return [log, referer, agent, host, `log-format '{${json}}'`];
    }
  }
}

/**
 * Nginx has the request time only in seconds (`0.123`): this map turns it into whole milliseconds
 * for the json format, as HAProxy's `%Ta`.
 */
export const NGINX_MS_MAP = [
  'map $request_time $interlock_request_ms {',
  '    "~^0\\.0*(?<interlock_ms>[1-9][0-9]*)$" $interlock_ms;',
  '    "~^(?<interlock_s>[1-9][0-9]*)\\.(?<interlock_f>[0-9][0-9][0-9])$" $interlock_s$interlock_f;',
  '    default 0;',
  '}',
];

/** The Nginx `log_format` of a format: its name and its text (single-quoted, JSON-escaped for json). */
export function nginxAccessLogFormat(format: AccessLogFormat): { name: string; definition: string; maps: string[] } {
  const common = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent';
  const name = `interlock_${format}`;
  switch (format) {
    case 'common':
      return { name, definition: `${name} '${common}'`, maps: [] };
    case 'combined':
      return { name, definition: `${name} '${common} "$http_referer" "$http_user_agent"'`, maps: [] };
    case 'json': {
      const json = [
        '"time":$msec',
        '"client":"$remote_addr"',
        '"method":"$request_method"',
        '"uri":"$request_uri"',
        '"protocol":"$server_protocol"',
        '"status":$status',
        '"bytes":$body_bytes_sent',
        '"duration_ms":$interlock_request_ms',
        '"host":"$host"',
        '"referer":"$http_referer"',
        '"user_agent":"$http_user_agent"',
      ].join(',');
      return { name, definition: `${name} escape=json '{${json}}'`, maps: NGINX_MS_MAP };
    }
  }
}
