/**
 * User programs on the worker tier (`redleaf boot --programs worker`, bootRv6's programPlacement):
 * the same programs, unchanged, each process's program on its own worker thread, reaching the
 * rv6 core through the interface reference its main gets (a capability of the worker domain).
 * The shell, pipelines, redirections and errors behave as in-thread; a program stuck in native
 * code (no deadline checks) is preempted, and the shell carries on; kill ends such a program at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testArtifactPath } from '../../src/kernel/paths.js';
import { programsImage, withSession } from './session.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const image = programsImage({ files: { 'bin/rv6_probe': readFileSync(testArtifactPath('rv6_probe')) } });

test('programs in workers: the shell, a pipeline, a redirection and an error as in-thread; domains shows them placed there', async () => {
  await withSession(
    async (s) => {
      assert.equal(await s.run('echo hello worker'), 'hello worker\n');
      assert.equal(await s.run('echo abc > f; cat f f | wc'), '2 2 8\n');
      assert.deepEqual(await s.status('cat nosuch'), { out: 'cat: nosuch: No such file or directory\n', status: 1 });
      const table = await s.run('domains');
      for (const d of ['init.1', 'sh.2']) assert.match(table, new RegExp(`\\n${d.replace('.', '\\.')} +live +worker `), d);
      assert.match(table, /\nfs +live +thread /, 'the kernel domains stay in the kernel thread');
    },
    image,
    'worker',
  );
});

test('a program stuck in native code is preempted; the shell carries on', async () => {
  await withSession(
    async (s) => {
      const t0 = Date.now();
      // 2^32 backtracking steps: minutes of native code, which no deadline check interrupts.
      const { status } = await s.status(`rv6_probe '["regexBomb",32]'`);
      const ms = Date.now() - t0;
      assert.equal(status, 139, 'ended as a crashed program');
      assert.ok(ms < 15_000, `preempted after ${ms} ms (its deadline is 2 s)`);
      assert.ok(
        s.logs.some((l) => /rv6_probe\.\d+ crashed: timeout: .* died \(deadline\)/.test(l)),
        `the core reports the deadline death; logs:\n${s.logs.join('\n')}`,
      );
      assert.equal(await s.run('echo still here'), 'still here\n');
    },
    image,
    'worker',
  );
});

test('kill ends a program stuck in native code at once, not at its deadline', async () => {
  await withSession(
    async (s) => {
      // Not s.run: the job's own output may come after the prompt that follows `[pid]`.
      const from = s.out.length;
      s.type(`rv6_probe '["echo","entering"]' '["regexBomb",32]' &\n`);
      await s.until(() => /\[\d+\]\n\$ /.test(s.out.slice(from)), 'the job started and the prompt');
      const pid = /\[(\d+)\]/.exec(s.out.slice(from))![1]!;
      // Its thread may take a while to start on a busy machine: wait until it said it goes on into the regular expression.
      await s.until(() => s.out.includes('"r":"entering"'), 'the probe to start');
      await sleep(100); // it is in the regular expression now
      const t0 = Date.now();
      await s.run(`kill ${pid}; wait`);
      const ms = Date.now() - t0;
      assert.ok(ms < 1500, `killed in ${ms} ms: its thread was terminated, not left to its 2 s deadline`);
      assert.doesNotMatch(await s.run('ps'), /rv6_probe/, 'it is gone');
    },
    image,
    'worker',
  );
});
