#!/usr/bin/env node
/**
 * `redleaf`: the host command line (boot, mkfs, fsck, disk, net, bench, ...).
 *
 * Each subcommand lives in its own file `src/cli/cmd-<name>.ts` exporting
 * `register(program: Command): void`; this file loads every such module it finds next to it, so
 * adding a command never means editing a shared list.
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { startWithV8Options } from '../host/v8-options.js';

// First: V8's options for this machine (its worker pool, eager compilation: host/v8-options.ts),
// starting this process again if need be.
await startWithV8Options();

const here = dirname(fileURLToPath(import.meta.url));
const program = new Command();
program
  .name('redleaf')
  .description('RedLeaf.ts: a safe operating system in TypeScript (language-based isolation domains on Node.js)')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

for (const f of readdirSync(here).filter((n) => /^cmd-[a-z0-9-]+\.js$/.test(n)).sort()) {
  const mod = (await import(pathToFileURL(`${here}/${f}`).href)) as { register?: (p: Command) => void };
  mod.register?.(program);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  console.error(`redleaf: ${(e as Error).message}`);
  process.exitCode = 1;
}
