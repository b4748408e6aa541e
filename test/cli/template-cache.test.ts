/**
 * Parsed templates kept between runs (src/cli/template-cache.ts): a kept parse renders exactly as
 * a fresh one, and an unreadable entry is parsed again and rewritten.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Mustache from 'mustache';
import { afterAll, describe, expect, it } from 'vitest';
import { keepParsedTemplates } from '../../src/cli/template-cache.ts';
import { renderTemplate } from '../../src/render/mustache.ts';
import { ROOT } from '../helpers/exec.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'il-tpl-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const kept = () => readdirSync(dir).filter((n) => n.startsWith('tpl-') && n.endsWith('.json'));

describe('parsed templates kept between runs', () => {
  it('keeps each parse, and a kept parse renders as a fresh one; a damaged entry is parsed again', () => {
    const template = readFileSync(path.join(ROOT, 'templates', 'haproxy.cfg.mustache'), 'utf8');
    const fresh = Mustache.parse(template);
    const freshOut = Mustache.render('{{#a}}[{{b}}]{{/a}} {{c}}', { a: [{ b: 1 }, { b: 2 }], c: 'x' });
    Mustache.templateCache?.clear();

    expect(keepParsedTemplates({ INTERLOCK_CODE_CACHE: dir })).toBe(dir);
    expect(keepParsedTemplates({ INTERLOCK_CODE_CACHE: path.join(dir, 'other') })).toBe(dir);
    expect(Mustache.parse(template)).toEqual(fresh);
    expect(kept()).toHaveLength(1);

    // A new process: nothing in memory, the parse read back from the folder.
    Mustache.templateCache?.clear();
    const read = Mustache.parse(template);
    expect(read).toEqual(fresh);
    expect(read).not.toBe(fresh);
    expect(Mustache.render('{{#a}}[{{b}}]{{/a}} {{c}}', { a: [{ b: 1 }, { b: 2 }], c: 'x' })).toBe(freshOut);

    for (const name of kept()) writeFileSync(path.join(dir, name), '{ not json');
    Mustache.templateCache?.clear();
    expect(Mustache.parse(template)).toEqual(fresh);
    expect(Mustache.render('{{#a}}[{{b}}]{{/a}} {{c}}', { a: [{ b: 1 }, { b: 2 }], c: 'x' })).toBe(freshOut);
    for (const name of kept()) expect(() => JSON.parse(readFileSync(path.join(dir, name), 'utf8'))).not.toThrow();

    // interlock's renderer parses through it: a kept parse is what it renders from.
    const own = '{{#backends}}<{{name}}>{{/backends}}done';
    const view = { backends: [{ name: 'a' }, { name: 'b' }] };
    Mustache.parse(own);
    const entry = kept().find((n) => readFileSync(path.join(dir, n), 'utf8').includes('done'));
    expect(entry).toBeDefined();
    const tokens = JSON.parse(readFileSync(path.join(dir, entry as string), 'utf8')) as unknown[];
    writeFileSync(path.join(dir, entry as string), JSON.stringify([...tokens, ['text', '!', 0, 0]]));
    Mustache.templateCache?.clear();
    expect(renderTemplate(own, view)).toBe('<a><b>done!');
  });
});
