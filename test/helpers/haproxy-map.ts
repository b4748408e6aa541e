/**
 * The HAProxy host map is named by its content hash (`haproxy.hosts.<12 hex>.map`) and the config
 * names it: tests find it through the config, as HAProxy does.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export const MAP_NAME = /map_beg\((haproxy\.hosts\.[0-9a-f]{12}\.map)\)/;

/** The map file name the config text names. */
export function mapNameIn(cfg: string): string | undefined {
  return MAP_NAME.exec(cfg)?.[1];
}

/** The map the config in `dir` names ('' when there is no config or map yet). */
export async function readHaproxyMap(dir: string, cfg = 'haproxy.cfg'): Promise<string> {
  const text = await readFile(path.join(dir, cfg), 'utf8').catch(() => '');
  const name = mapNameIn(text);
  return name ? readFile(path.join(dir, name), 'utf8').catch(() => '') : '';
}
