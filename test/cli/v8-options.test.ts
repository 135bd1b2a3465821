/**
 * The V8 options of the kernel process (src/host/v8-options.ts): the pool size for a number of
 * cores, eager compilation, and a process that calls startWithV8Options first — as the command
 * line does — running again with them unless the user chose otherwise or turned it off, with its
 * exit status and signal passed on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { ROOT, tmpdirFor } from './run-cli.js';
import { missingV8Flags, poolSizeFor } from '../../src/host/v8-options.js';

test('the pool gets the cores left after the kernel thread and one device thread: at least 1, at most V8\'s 4', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 8, 64].map(poolSizeFor), [1, 1, 1, 2, 3, 4, 4, 4]);
});

test('the flags added: the pool size unless chosen (none at V8\'s default), eager compilation unless --lazy or --no-lazy was chosen', () => {
  assert.deepEqual(missingV8Flags([], 2), ['--v8-pool-size=1', '--no-lazy']);
  assert.deepEqual(missingV8Flags([], 8), ['--no-lazy'], 'V8\'s default pool needs no flag');
  assert.deepEqual(missingV8Flags(['--v8-pool-size=3'], 2), ['--no-lazy']);
  assert.deepEqual(missingV8Flags(['--lazy'], 2), ['--v8-pool-size=1']);
  assert.deepEqual(missingV8Flags(['--no-lazy', '--v8-pool-size=2'], 2), []);
});

test('a process calling startWithV8Options first runs with them (once), keeps what the user chose, and passes on its status and signal', (t) => {
  const dir = tmpdirFor(t, 'v8-options');
  const script = npath.join(dir, 'print.mjs');
  const module = pathToFileURL(npath.join(ROOT, 'dist', 'src', 'host', 'v8-options.js')).href;
  // Prints its node flags, then ends as its argument says: an exit status, or 'term' (killed by SIGTERM).
  nfs.writeFileSync(
    script,
    `import { startWithV8Options } from '${module}';\nawait startWithV8Options();\nconsole.log(JSON.stringify(process.execArgv));\nconst how = process.argv[2];\nif (how === 'term') process.kill(process.pid, 'SIGTERM');\nelse process.exit(Number(how));\n`,
  );
  const base: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
  delete base.REDLEAF_V8_OPTIONS;
  const run = (how: string, flags: string[] = [], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [...flags, script, how], { encoding: 'utf8', env: { ...base, ...env } });
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, `one process printed: ${r.stdout}${r.stderr}`);
    return { status: r.status, signal: r.signal, flags: JSON.parse(lines[0]!) as string[] };
  };
  const size = poolSizeFor(availableParallelism());
  const pool = size < 4 ? [`--v8-pool-size=${size}`] : [];
  const plain = run('7');
  assert.deepEqual(plain.flags, [...pool, '--no-lazy'], "this machine's pool size (V8's default needs none) and eager compilation");
  assert.equal(plain.status, 7, 'the exit status passed on');
  assert.deepEqual(run('0', ['--v8-pool-size=3']).flags, ['--no-lazy', '--v8-pool-size=3'], 'a size chosen on the command line is kept');
  assert.deepEqual(run('0', [], { NODE_OPTIONS: '--v8-pool-size=2' }).flags, ['--no-lazy'], 'and one chosen in NODE_OPTIONS');
  assert.deepEqual(run('0', ['--lazy']).flags, [...pool, '--lazy'], 'lazy compilation, chosen, is kept');
  assert.deepEqual(run('0', [], { REDLEAF_V8_OPTIONS: '0' }).flags, [], 'REDLEAF_V8_OPTIONS turns the restart off');
  const term = run('term');
  assert.equal(term.signal, 'SIGTERM', 'a process killed by a signal: this one ends by it too');
});
