/** Plain-text tables and the small statistics the benchmarks print. */

export type Cell = string | number;

export interface Column {
  title: string;
  /** Numbers are right-aligned by default, text left-aligned. */
  align?: 'left' | 'right';
}

/** A table with a title line, a header and a rule under it; columns fit their widest cell. */
export function table(
  title: string,
  columns: readonly (string | Column)[],
  rows: readonly (readonly Cell[])[],
): string {
  const cols = columns.map((c) => (typeof c === 'string' ? { title: c } : c));
  const text = rows.map((row) => cols.map((_, i) => String(row[i] ?? '')));
  const widths = cols.map((c, i) => Math.max(c.title.length, ...text.map((r) => (r[i] ?? '').length)));
  const alignOf = (i: number) =>
    cols[i]?.align ??
    (rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || /^[\d.,×≈<>~% -]+$/.test(String(r[i] ?? '')))
      ? 'right'
      : 'left');
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (alignOf(i) === 'right' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [
    title,
    line(cols.map((c) => c.title)),
    line(widths.map((w) => '-'.repeat(w))),
    ...text.map((r) => line(r)),
  ].join('\n');
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** `12,345` */
export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

/** A number with `digits` decimals, or `n/a`. */
export function fixed(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

/** Milliseconds for a table: one decimal below 100 ms, whole above. */
export function ms(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n < 100 ? n.toFixed(1) : int(n);
}

export function mb(bytes: number, digits = 1): string {
  return Number.isFinite(bytes) ? (bytes / 1024 / 1024).toFixed(digits) : 'n/a';
}
