/**
 * Template texts, loaded at the edge: the built-in templates shipped in `templates/` and the
 * overrides a config names. The renderers are pure: they take the text.
 * The URL is relative to this module, which works from src/render (tests, jiti) and from
 * dist/render (the published package) alike, since both sit two levels below the package root.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isFileOutput } from '../outputs/drivers.ts';
import type { TemplateTexts } from '../pipeline.ts';
import type { TemplateName } from '../render/types.ts';
import { resolveConfigPath } from './paths.ts';
import type { Config } from './schema.ts';

const FILES: Record<TemplateName, string> = {
  'haproxy.cfg': 'haproxy.cfg.mustache',
  'nginx.conf': 'nginx.conf.mustache',
};

const cache = new Map<TemplateName, string>();

/** Where a built-in template lives, for users who want to copy it as a starting point. */
export function builtInTemplateUrl(name: TemplateName): URL {
  return new URL(`../../templates/${FILES[name]}`, import.meta.url);
}

/** The text of a built-in template, read once per process. */
export function builtInTemplate(name: TemplateName): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(builtInTemplateUrl(name), 'utf8');
    cache.set(name, text);
  }
  return text;
}

/** Both built-in templates, read once per process. */
export function builtInTemplates(): Readonly<Record<TemplateName, string>> {
  return { 'haproxy.cfg': builtInTemplate('haproxy.cfg'), 'nginx.conf': builtInTemplate('nginx.conf') };
}

/** The built-in templates and the overrides of the file outputs (their existence was checked with the config). */
export async function readTemplates(config: Config, configDir: string): Promise<TemplateTexts> {
  const byOutput = new Map<number, string>();
  for (const [i, o] of config.outputs.entries()) {
    if (isFileOutput(o) && o.template) {
      byOutput.set(i, await readFile(resolveConfigPath(configDir, o.template), 'utf8'));
    }
  }
  return { byOutput, builtIn: builtInTemplates() };
}
