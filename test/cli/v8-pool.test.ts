/**
 * V8's worker pool sized to the machine (src/host/v8-pool.ts): the size for a number of cores,
 * and a process that calls startWithPool first — as the command line does — running again with
 * that size unless the user chose one or turned it off, with its exit status and signal passed on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { ROOT, tmpdirFor } from './run-cli.js';
import { poolSizeFor } from '../../src/host/v8-pool.js';

test('the pool gets the cores left after the kernel thread and one device thread: at least 1, at most V8\'s 4', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 8, 64].map(poolSizeFor), [1, 1, 1, 2, 3, 4, 4, 4]);
});

test('a process calling startWithPool first runs with the size (once), keeps a size the user chose, and passes on its status and signal', (t) => {
  const dir = tmpdirFor(t, 'v8-pool');
  const script = npath.join(dir, 'print.mjs');
  const module = pathToFileURL(npath.join(ROOT, 'dist', 'src', 'host', 'v8-pool.js')).href;
  // Prints its node flags, then ends as its argument says: an exit status, or 'term' (killed by SIGTERM).
  nfs.writeFileSync(
    script,
    `import { startWithPool } from '${module}';\nawait startWithPool();\nconsole.log(JSON.stringify(process.execArgv));\nconst how = process.argv[2];\nif (how === 'term') process.kill(process.pid, 'SIGTERM');\nelse process.exit(Number(how));\n`,
  );
  const base: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
  delete base.REDLEAF_V8_POOL;
  const run = (how: string, flags: string[] = [], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [...flags, script, how], { encoding: 'utf8', env: { ...base, ...env } });
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, `one process printed: ${r.stdout}${r.stderr}`);
    return { status: r.status, signal: r.signal, flags: JSON.parse(lines[0]!) as string[] };
  };
  const size = poolSizeFor(availableParallelism());
  const plain = run('7');
  assert.deepEqual(plain.flags, size < 4 ? [`--v8-pool-size=${size}`] : [], "this machine's size (V8's default needs no restart)");
  assert.equal(plain.status, 7, 'the exit status passed on');
  assert.deepEqual(run('0', ['--v8-pool-size=3']).flags, ['--v8-pool-size=3'], 'a size chosen on the command line is kept');
  assert.deepEqual(run('0', [], { NODE_OPTIONS: '--v8-pool-size=2' }).flags, [], 'and one chosen in NODE_OPTIONS');
  assert.deepEqual(run('0', [], { REDLEAF_V8_POOL: '0' }).flags, [], 'REDLEAF_V8_POOL turns the restart off');
  const term = run('term');
  assert.equal(term.signal, 'SIGTERM', 'a process killed by a signal: this one ends by it too');
});
