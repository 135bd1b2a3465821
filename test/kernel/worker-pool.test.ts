/**
 * The worker tier's pool of warm threads (src/kernel/worker-pool.ts), with small runtimes in place
 * of worker-host.js: a taken thread answers its first message; once the pool has warmed, a take
 * skips the runtime's start-up; a runtime that fails or exits while idle is dropped without
 * bringing the process down, and takes go on working; after close(), takes start their own thread.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { WorkerPool } from '../../src/kernel/worker-pool.js';
import { sleep } from './helpers.js';

/** A runtime (an ES module as a data: URL) that runs `startup`, then echoes its first message. */
const runtime = (startup: string): URL =>
  new URL(
    'data:text/javascript,' +
      encodeURIComponent(`import { parentPort } from 'node:worker_threads';\n${startup}\nparentPort.once('message', (m) => parentPort.postMessage('echo ' + m));`),
  );

/** Milliseconds from sending a taken thread its first message to its answer. */
async function answerMs(w: Worker, msg: string): Promise<number> {
  w.ref(); // taken threads are unref'd: keep this test's event loop alive until the answer
  const t0 = performance.now();
  w.postMessage(msg);
  const [reply] = await once(w, 'message');
  assert.equal(reply, `echo ${msg}`);
  const ms = performance.now() - t0;
  await w.terminate();
  return ms;
}

test('a warm thread has done its start-up before it is taken; a cold one has not', async () => {
  const STARTUP_MS = 400;
  const pool = new WorkerPool(runtime(`await new Promise((r) => setTimeout(r, ${STARTUP_MS}));`));
  try {
    const cold = await answerMs(pool.take(), 'first');
    assert.ok(cold >= STARTUP_MS * 0.9, `the first take waited for the start-up (${cold.toFixed(0)} ms)`);
    await sleep(STARTUP_MS * 3); // the two threads the first take started are ready now
    const warm = [await answerMs(pool.take(), 'second'), await answerMs(pool.take(), 'third')];
    for (const ms of warm) assert.ok(ms < STARTUP_MS / 2, `a warm thread answers at once (${warm.map((m) => m.toFixed(0)).join(', ')} ms)`);
  } finally {
    pool.close();
  }
});

test('threads that fail or exit while idle are dropped; takes go on; after close() a take starts its own', async () => {
  /** The exit code of a taken thread (its 'error', if any, heard: a taker listens). */
  const exitOf = (w: Worker): Promise<number> => {
    w.ref(); // taken threads are unref'd: keep this test's event loop alive until it ends
    w.on('error', () => {});
    return new Promise((resolve) => w.once('exit', resolve));
  };
  for (const startup of ["throw new Error('runtime failed');", 'process.exit(3);']) {
    const pool = new WorkerPool(runtime(startup));
    assert.notEqual(await exitOf(pool.take()), 0, startup); // the taken one fails like the idle ones
    await sleep(300); // the idle ones fail too, with nobody listening: the process must not care
    assert.notEqual(await exitOf(pool.take()), 0, 'a take after the idle threads died still gets a thread');
    pool.close();
  }
  const pool = new WorkerPool(runtime(''));
  pool.close();
  assert.ok((await answerMs(pool.take(), 'after close')) >= 0);
});
