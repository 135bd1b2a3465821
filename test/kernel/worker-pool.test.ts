/**
 * The worker tier's pool of warm threads (src/kernel/worker-pool.ts), with small runtimes in place
 * of worker-host.js: a taken thread answers its first message; once the pool has warmed, a take
 * skips the runtime's start-up; a take that finds it empty makes it keep one more; a runtime that
 * fails or exits while idle is dropped without bringing the process down, and takes go on
 * working; after close(), takes start their own thread; ended() tells, with no turn of the event
 * loop, that a thread has ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { READY, WorkerPool } from '../../src/kernel/worker-pool.js';
import { sleep } from './helpers.js';

/** A runtime (an ES module as a data: URL) that runs `startup`, says it is ready, then echoes its first message. */
const runtime = (startup: string): URL =>
  new URL(
    'data:text/javascript,' +
      encodeURIComponent(
        `import { parentPort } from 'node:worker_threads';\n${startup}\nparentPort.once('message', (m) => parentPort.postMessage('echo ' + m));\nparentPort.postMessage(${JSON.stringify(READY)});`,
      ),
  );

/** Milliseconds from sending a taken thread its first message to its answer. */
async function answerMs(w: Worker, msg: string): Promise<number> {
  w.ref(); // taken threads are unref'd: keep this test's event loop alive until the answer
  const t0 = performance.now();
  // One listener for all its messages: a port may deliver two at once (its READY, if it was still
  // starting when taken, and the echo), and a once() re-armed after the first would miss the second.
  const reply = await new Promise<unknown>((resolve) => {
    const on = (m: unknown): void => {
      if (m === READY) return;
      w.off('message', on);
      resolve(m);
    };
    w.on('message', on);
    w.postMessage(msg);
  });
  assert.equal(reply, `echo ${msg}`);
  const ms = performance.now() - t0;
  await w.terminate();
  return ms;
}

test('a warm thread has done its start-up before it is taken; a cold one has not', { timeout: 30_000 }, async () => {
  const STARTUP_MS = 1000;
  const pool = new WorkerPool(runtime(`await new Promise((r) => setTimeout(r, ${STARTUP_MS}));`));
  try {
    const cold = await answerMs(pool.take(), 'first');
    assert.ok(cold >= STARTUP_MS * 0.9, `the first take waited for the start-up (${cold.toFixed(0)} ms)`);
    await sleep(STARTUP_MS * 2); // the two threads the first take started are ready now
    const warm = [await answerMs(pool.take(), 'second'), await answerMs(pool.take(), 'third')];
    for (const ms of warm) assert.ok(ms < STARTUP_MS / 2, `a warm thread answers at once (${warm.map((m) => m.toFixed(0)).join(', ')} ms)`);
  } finally {
    pool.close();
  }
});

test('a take that finds the pool empty makes it keep one more thread (up to four)', { timeout: 30_000 }, async () => {
  const STARTUP_MS = 1000;
  const pool = new WorkerPool(runtime(`await new Promise((r) => setTimeout(r, ${STARTUP_MS}));`));
  const takeThree = async (): Promise<number[]> => {
    const ws = [pool.take(), pool.take(), pool.take()];
    return Promise.all(ws.map((w, i) => answerMs(w, `three ${i}`)));
  };
  try {
    await answerMs(pool.take(), 'warm-up'); // cold: it fills the pool, two threads
    await sleep(STARTUP_MS * 2);
    const first = await takeThree();
    assert.ok(first[2]! >= STARTUP_MS * 0.9, `the third found the pool empty and waited (${first.map((m) => m.toFixed(0)).join(', ')} ms)`);
    await sleep(STARTUP_MS * 2);
    const then = await takeThree();
    for (const ms of then) assert.ok(ms < STARTUP_MS / 2, `three at once find three warm threads now (${then.map((m) => m.toFixed(0)).join(', ')} ms)`);
  } finally {
    pool.close();
  }
});

test('threads that fail or exit while idle are dropped; takes go on; after close() a take starts its own', { timeout: 30_000 }, async () => {
  /** The exit code of a taken thread (its 'error', if any, heard: a taker listens). */
  const exitOf = (w: Worker): Promise<number> => {
    w.ref(); // taken threads are unref'd: keep this test's event loop alive until it ends
    w.on('error', () => {});
    return new Promise((resolve) => w.once('exit', resolve));
  };
  // A runtime that throws as it loads (an 'error', then exit code 1), and one that just ends (code 0).
  const failing = runtime("throw new Error('runtime failed');");
  const ending = new URL('data:text/javascript,' + encodeURIComponent('// nothing to wait for: the thread ends'));
  for (const [url, code] of [[failing, 1], [ending, 0]] as const) {
    const pool = new WorkerPool(url);
    assert.equal(await exitOf(pool.take()), code); // the taken one ends like the idle ones
    await sleep(500); // the idle ones end too, with nobody listening: the process must not care
    assert.equal(await exitOf(pool.take()), code, 'a take after the idle threads ended still gets a thread');
    await sleep(500); // and the pool's new ones end as well, before the pool is closed
    pool.close();
  }
  const pool = new WorkerPool(runtime(''));
  pool.close();
  assert.ok((await answerMs(pool.take(), 'after close')) >= 0);
});

test('ended() sees a thread end with no turn of the event loop: false while it runs, true once it is gone', { timeout: 30_000 }, async () => {
  const pool = new WorkerPool(runtime(''));
  try {
    const w = pool.take();
    const cell = new Int32Array(new SharedArrayBuffer(4));
    /** Block this thread (as a blocking load holds the kernel thread) until `w` ended, or `ms` passed: the ms waited. */
    const blockUntilEnded = (ms: number): number => {
      const t0 = performance.now();
      while (!pool.ended(w) && performance.now() - t0 < ms) Atomics.wait(cell, 0, 0, 5);
      return performance.now() - t0;
    };
    let exited = false;
    w.once('exit', () => (exited = true));
    assert.ok(blockUntilEnded(200) >= 200 && !pool.ended(w), 'a running thread has not ended');
    void w.terminate();
    const ms = blockUntilEnded(10_000);
    assert.ok(pool.ended(w), `terminated, the thread is gone (looked for ${ms.toFixed(0)} ms)`);
    assert.equal(exited, false, "seen before its 'exit' event could be delivered");
    await new Promise((resolve) => w.once('exit', resolve));
  } finally {
    pool.close();
  }
});
