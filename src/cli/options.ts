/**
 * Option parsers for commander, shared by every command: sizes (over the host's size parser,
 * src/host/sizes.ts, which the CLI re-exports for its commands) and numbers in a range (a bad
 * value is refused naming the option and what it takes); and `IMAGE:/path`, how an argument names
 * a file in an rv6 image (cp, inspect).
 */
import { InvalidArgumentError } from 'commander';
import { parseSize } from '../host/sizes.js';

export { parseSize, formatSize } from '../host/sizes.js';

/** A commander option parser built on parseSize. */
export function sizeOption(option: string): (v: string) => number {
  return (v: string): number => {
    try {
      return parseSize(v);
    } catch (e) {
      throw new InvalidArgumentError(`${option}: ${(e as Error).message}`);
    }
  };
}

/**
 * A commander option parser for a number in min..max (`whole`: a count, so a whole number too;
 * max Infinity: no upper bound).
 */
export function numberOption(option: string, min: number, max: number, whole = true): (v: string) => number {
  const range = max === Infinity ? `at least ${min}` : `in ${min}..${max}`;
  return (v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    // A whole number past 2^53 - 1 is refused too: its digits round to another number.
    if (!(n >= min && n <= max) || (whole && !Number.isSafeInteger(n))) throw new InvalidArgumentError(`${option} must be a ${whole ? 'whole ' : ''}number ${range}, got "${v}"`);
    return n;
  };
}

/** A file in an rv6 image, as an argument names it: `IMAGE:/path/in/fs`. */
export interface ImageRef {
  image: string;
  path: string;
}

/** `IMAGE:/path` → { image, path } (split at the first ":/"); anything else → null (a host path). */
export function parseImageRef(arg: string): ImageRef | null {
  const i = arg.indexOf(':/');
  if (i <= 0) return null;
  return { image: arg.slice(0, i), path: arg.slice(i + 1) };
}
