/**
 * Byte sizes for host tools and the command line: parse `512M`, `1G`, `16GiB`, `4096`, `1.5G` and print sizes
 * back as `64 MiB`. Suffixes are binary (K = 1024, M = 2^20, G = 2^30, T = 2^40), case-insensitive,
 * optionally followed by `B` or `iB`; a bare number (or a `B` suffix) is bytes.
 *
 * Invariant: parseSize returns a positive safe integer or throws an Error whose message quotes the
 * input and shows the accepted forms (commander callers wrap it in InvalidArgumentError).
 */
const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Bytes denoted by `text` (e.g. "64M" → 67108864). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  const hint = 'expected a number of bytes with an optional K, M, G or T suffix, e.g. 4096, 512M, 1G, 16G';
  if (!m || (m[3] !== undefined && m[3].toLowerCase() === 'ib' && m[2] === '')) throw new Error(`bad size "${text}": not a size; ${hint}`);
  const bytes = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(bytes)) throw new Error(`bad size "${text}": not a whole number of bytes (or too large)`);
  if (bytes <= 0) throw new Error(`bad size "${text}": must be greater than 0`);
  return bytes;
}

/** Human-readable binary size: "64 MiB", "1.50 GiB", "3 KiB", "100 bytes". */
export function formatSize(bytes: number): string {
  const units = [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const;
  for (const [name, k] of units) {
    if (bytes >= k) {
      const v = bytes / k;
      return `${Number.isInteger(v) ? v : v.toFixed(2)} ${name}`;
    }
  }
  return `${bytes} bytes`;
}
