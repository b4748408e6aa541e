/**
 * The built-in templates shipped in `templates/`. The one place in src/render that touches the
 * file system, so the renderers stay pure: they take template text, and fall back to these.
 * The URL is relative to this module, which works from src/render (tests, jiti) and from
 * dist/render (the published package) alike, since both sit two levels below the package root.
 */
import { readFileSync } from 'node:fs';

export type TemplateName = 'haproxy.cfg' | 'nginx.conf';

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
