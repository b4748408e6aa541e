/**
 * Reads a V8 `.cpuprofile` (node --cpu-prof) and lists where the time went: self time per
 * function, and inclusive and per-line time of the repository's own code (src/), with file:line.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  /** 0-based. */
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
  /** Samples per source line (1-based) of this node's function. */
  positionTicks?: Array<{ line: number; ticks: number }>;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Hotspot {
  name: string;
  /** `src/render/nginx.ts:123`, or the runtime's own label. */
  where: string;
  ms: number;
  share: number;
}

export interface HotLine {
  /** `src/render/nginx.ts:123` */
  where: string;
  ms: number;
  share: number;
  /** The line's text, trimmed. */
  code: string;
}

export interface ProfileSummary {
  totalMs: number;
  self: Hotspot[];
  /** Inclusive time of functions in the repository's src/. */
  inclusive: Hotspot[];
  /** Self time per source line of the repository's src/. */
  lines: HotLine[];
}

function location(frame: CallFrame, root: string): string {
  if (!frame.url) return '(native)';
  let file = frame.url;
  if (file.startsWith('file://')) file = fileURLToPath(file);
  const rel = path.isAbsolute(file) ? path.relative(root, file) : file;
  return `${rel}:${frame.lineNumber + 1}`;
}

function isOwnCode(frame: CallFrame, root: string): boolean {
  const where = location(frame, root);
  return where.startsWith('src/');
}

export function summarizeProfile(file: string, root: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}\u0000${location(n.callFrame, root)}`;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    totalUs += delta;
    const node = byId.get(id);
    if (!node) return;
    const k = key(node);
    self.set(k, (self.get(k) ?? 0) + delta);
    // Each function once per sample, however deep it recurses.
    const seen = new Set<string>();
    for (let at: ProfileNode | undefined = node; at; at = byId.get(parent.get(at.id) ?? -1)) {
      if (!isOwnCode(at.callFrame, root)) continue;
      const ak = key(at);
      if (seen.has(ak)) continue;
      seen.add(ak);
      inclusive.set(ak, (inclusive.get(ak) ?? 0) + delta);
    }
  });
  const list = (m: Map<string, number>): Hotspot[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => {
        const [name = '', where = ''] = k.split('\u0000');
        return { name, where, ms: us / 1000, share: totalUs > 0 ? us / totalUs : 0 };
      });
  // A node's self time spread over its lines in proportion to their ticks (samples can differ in
  // length, so ticks are weighted by the node's measured time, not by a mean interval).
  const nodeUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    nodeUs.set(id, (nodeUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const lineUs = new Map<string, number>();
  for (const n of profile.nodes) {
    if (!isOwnCode(n.callFrame, root)) continue;
    const ticks = n.positionTicks ?? [];
    const all = ticks.reduce((sum, p) => sum + p.ticks, 0);
    if (all === 0) continue;
    const file = location(n.callFrame, root).replace(/:\d+$/, '');
    for (const p of ticks) {
      const k = `${file}:${p.line}`;
      lineUs.set(k, (lineUs.get(k) ?? 0) + ((nodeUs.get(n.id) ?? 0) * p.ticks) / all);
    }
  }
  const sources = new Map<string, string[]>();
  const codeAt = (where: string): string => {
    const m = /^(.*):(\d+)$/.exec(where);
    if (!m) return '';
    const file = m[1] as string;
    let text = sources.get(file);
    if (!text) {
      try {
        text = readFileSync(path.join(root, file), 'utf8').split('\n');
      } catch {
        text = [];
      }
      sources.set(file, text);
    }
    const line = (text[Number(m[2]) - 1] ?? '').trim();
    return line.length > 90 ? `${line.slice(0, 87)}...` : line;
  };
  const lines = [...lineUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, us]) => ({ where, ms: us / 1000, share: totalUs > 0 ? us / totalUs : 0, code: codeAt(where) }));
  return { totalMs: totalUs / 1000, self: list(self), inclusive: list(inclusive), lines };
}
