/**
 * Size options on the command line: commander parsers over the host's size parser
 * (src/host/sizes.ts), which the CLI re-exports for its commands.
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
