/**
 * The renderers with the built-in templates, as the edge loads them (the renderers themselves are
 * pure and take template text). Tests and benchmarks import these instead of src/render's.
 */
import { builtInTemplates } from '../../src/config/templates.ts';
import type { TemplateTexts } from '../../src/pipeline.ts';
import { type HaproxyRenderOptions, renderHaproxy as haproxy } from '../../src/render/haproxy.ts';
import { type NginxRenderOptions, renderNginx as nginx } from '../../src/render/nginx.ts';
import type { RenderedFile } from '../../src/render/types.ts';
import type { Route } from '../../src/routes/types.ts';

export const BUILT_IN = builtInTemplates();

/** What planRender takes: the built-in templates, plus overrides by output index. */
export function templateTexts(byOutput: ReadonlyMap<number, string> = new Map()): TemplateTexts {
  return { byOutput, builtIn: BUILT_IN };
}

export function renderHaproxy(
  routes: readonly Route[],
  output: Parameters<typeof haproxy>[1],
  options: Partial<HaproxyRenderOptions> = {},
): RenderedFile[] {
  return haproxy(routes, output, { template: BUILT_IN['haproxy.cfg'], ...options });
}

export function renderNginx(
  routes: readonly Route[],
  output: Parameters<typeof nginx>[1],
  options: Omit<NginxRenderOptions, 'template'> & { template?: string },
): RenderedFile[] {
  return nginx(routes, output, { template: BUILT_IN['nginx.conf'], ...options });
}
