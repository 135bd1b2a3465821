/**
 * Text tables for the operator's console (`redleaf monitor`'s and rv6's domain lists, `redleaf
 * inspect`): rows of cells as lines of aligned columns.
 */

/** `rows` as lines: each column as wide as its widest cell, `gap` between columns, no trailing spaces. */
export function alignColumns(rows: readonly (readonly string[])[], gap = '  '): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join(gap).trimEnd());
}
