import Mustache from 'mustache';
import { describe, expect, it } from 'vitest';
import { builtInTemplate } from '../../src/config/templates.ts';
import { haproxyView } from '../../src/render/haproxy.ts';
import { renderTemplate } from '../../src/render/mustache.ts';
import { nginxView } from '../../src/render/nginx.ts';
import { RenderError } from '../../src/render/types.ts';
import { SCENARIOS } from '../fixtures/routes/scenarios.ts';

const mustacheJs = (template: string, view: object) => Mustache.render(template, view, {}, { escape: (s) => s });

describe('renderTemplate renders as mustache.js does with escaping off', () => {
  for (const scenario of SCENARIOS) {
    it(`the built-in templates, ${scenario.name}`, () => {
      const h = haproxyView(scenario.routes, scenario.haproxy).view;
      expect(renderTemplate(builtInTemplate('haproxy.cfg'), h)).toBe(mustacheJs(builtInTemplate('haproxy.cfg'), h));
      const n = nginxView(scenario.routes, scenario.nginx, '.');
      expect(renderTemplate(builtInTemplate('nginx.conf'), n)).toBe(mustacheJs(builtInTemplate('nginx.conf'), n));
    });
  }

  const cases: Array<[string, string, object]> = [
    ['escaping off', '{{a}} {{{a}}} {{&a}}', { a: '<"&\'>' }],
    ['numbers and zero', '{{n}} {{#z}}no{{/z}}{{^z}}zero{{/z}}', { n: 4096, z: 0 }],
    [
      'dotted names and the current item',
      '{{a.b.c}} {{#list}}[{{.}}]{{/list}}',
      { a: { b: { c: 'deep' } }, list: [1, 2] },
    ],
    ['a false inner field hides the outer one', '{{#o}}{{#x}}outer{{/x}}{{/o}}', { x: true, o: { x: false } }],
    ['a missing inner field falls back to the outer one', '{{#o}}{{x}}{{/o}}', { x: 'outer', o: {} }],
    [
      'inverted sections and empty lists',
      '{{^e}}empty{{/e}}{{^f}}false{{/f}}{{^t}}no{{/t}}',
      { e: [], f: false, t: 1 },
    ],
    ['standalone lines', 'a\n{{#s}}\n  b\n{{/s}}\n{{! note }}\nc\n', { s: true }],
    ['set delimiters', '{{=<% %>=}}<% a %>{{a}}', { a: 'x' }],
    ['a string section', '{{#s}}<{{.}}>{{/s}}', { s: 'text' }],
  ];
  for (const [name, template, view] of cases) {
    it(name, () => {
      expect(renderTemplate(template, view)).toBe(mustacheJs(template, view));
    });
  }

  it('renders nothing for a partial, as mustache.js without partials', () => {
    expect(renderTemplate('a{{> part}}b', {})).toBe(mustacheJs('a{{> part}}b', {}));
  });

  it('refuses lambdas and reports template syntax errors as render errors', () => {
    expect(() => renderTemplate('{{f}}', { f: () => 'x' })).toThrow(/lambdas are not supported/);
    expect(() => renderTemplate('{{#a}}', {})).toThrow(RenderError);
  });
});
