/**
 * NVMe driver core against the controller model, on both backends (RAM and image file) and in both
 * completion modes (poll and interrupt): bring-up, data integrity (including multi-page PRP lists
 * and random batches checked against a model), status errors, timeouts, reset with requests in
 * flight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomFillSync } from 'node:crypto';
import fc from 'fast-check';
import { startNvme, type NvmeBackend, type NvmeDevice } from '../../src/devices/nvme/index.js';
import { createNvmeCore, NvmeError, type BlockRequest, type NvmeCore, type NvmeCoreOptions } from '../../src/domains/nvme/core.js';
import { FakeDma, FakeHeap } from './dma-fake.js';

const PHYS_BYTES = 96 << 20;
const DISK_BYTES = 16 << 20;

interface Setup {
  dev: NvmeDevice;
  core: NvmeCore;
  heap: FakeHeap;
  /** Resolves when `p` settles, driving completions meanwhile in the chosen mode. */
  drive<T>(p: Promise<T>): Promise<T>;
}

type Mode = 'poll' | 'interrupt';

/**
 * Start a controller and a driver. In poll mode the driver is polled from a setImmediate loop; in
 * interrupt mode completions arrive only through onInterrupt, and a slow timer runs the timeout
 * clock via onInterrupt(0) (which reaps nothing).
 */
async function withDriver(backend: NvmeBackend, mode: Mode, fn: (s: Setup) => Promise<void>,
                          opts: Partial<NvmeCoreOptions> = {}): Promise<void> {
  const phys = new SharedArrayBuffer(PHYS_BYTES);
  const dev = await startNvme({ phys, backend });
  const heap = new FakeHeap(phys);
  const core = createNvmeCore({
    bar0: dev.bar0, wakeWord: dev.wakeWord, alloc: heap.alloc, now: () => performance.now(),
    interrupts: mode === 'interrupt', ...opts,
  });
  if (mode === 'interrupt') dev.onIrq((bits) => core.onInterrupt(bits));
  const drive = async <T>(p: Promise<T>): Promise<T> => {
    let settled = false;
    const done = p.finally(() => { settled = true; });
    done.catch(() => undefined);
    while (!settled) {
      if (mode === 'poll') core.poll();
      else core.onInterrupt(0);
      await new Promise((r) => setImmediate(r));
    }
    return done;
  };
  try {
    await core.init();
    await fn({ dev, core, heap, drive });
  } finally {
    await dev.stop();
  }
}

function withImage(bytes: number, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nvme-drv-'));
  const path = join(dir, 'disk.img');
  writeFileSync(path, Buffer.alloc(bytes));
  return fn(path).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** Run `fn` on the RAM backend and on an image file, in the given mode. */
async function onBothBackends(mode: Mode, fn: (s: Setup, kind: string) => Promise<void>, opts?: Partial<NvmeCoreOptions>): Promise<void> {
  await withDriver({ kind: 'ram', bytes: DISK_BYTES }, mode, (s) => fn(s, 'ram'), opts);
  await withImage(DISK_BYTES, (path) => withDriver({ kind: 'file', path }, mode, (s) => fn(s, 'file'), opts));
}

const random = (n: number): Uint8Array => randomFillSync(new Uint8Array(n));

for (const mode of ['poll', 'interrupt'] as const) {
  test(`${mode}: bring-up reports geometry; read/write/flush round-trip incl. multi-page PRP lists`, () =>
    onBothBackends(mode, async ({ core, heap, drive }, kind) => {
      const info = core.info();
      assert.equal(info.blockSize, 512);
      assert.equal(info.blocks, DISK_BYTES / 512);
      assert.equal(info.maxTransferBytes, 4 << 20);
      assert.match(info.model, new RegExp(`RedLeaf.*${kind}`));
      // Sizes: one block; one page; two pages from an offset (PRP2 is a page); a large transfer from
      // an offset (a PRP list longer than a page: chained list pages).
      for (const [blocks, off] of [[1, 0], [8, 0], [8, 512], [16, 1024], [8191, 512]] as const) {
        const src = heap.alloc(blocks * 512 + off);
        const dst = heap.alloc(blocks * 512 + off);
        const data = random(blocks * 512);
        src.write(off, data);
        await drive(core.write(100, blocks, src, off));
        await drive(core.read(100, blocks, dst, off));
        assert.ok(Buffer.from(dst.bytes(off)).equals(Buffer.from(data)), `${blocks} blocks at offset ${off}`);
      }
      await drive(core.flush());
    }));

  test(`${mode}: random batches of 32 in flight keep data intact (fast-check, 4 queues)`, () =>
    onBothBackends(mode, async ({ core, heap, drive }) => {
      const blocks = 2048; // the model covers the first 1 MiB
      const model = new Uint8Array(blocks * 512);
      const bufs = Array.from({ length: 32 }, () => heap.alloc(8 * 512));
      const reqs: BlockRequest[] = bufs.map((buf) => ({ op: 'read', lba: 0, nblocks: 1, buf, bufOff: 0, error: null }));
      const out: BlockRequest[] = [];
      const op = fc.record({ write: fc.boolean(), lba: fc.nat(blocks - 8), n: fc.integer({ min: 1, max: 8 }), seed: fc.nat(255) });
      await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 32 }), fc.nat(3), async (ops, queue) => {
        // Writes within one batch may complete in any order: keep their ranges disjoint from every
        // other request of the batch so the outcome is defined.
        const taken = new Uint8Array(blocks);
        const batch: BlockRequest[] = [];
        ops.forEach((o, i) => {
          for (let b = o.lba; b < o.lba + o.n; b++) if (taken[b]) return;
          taken.fill(1, o.lba, o.lba + o.n);
          const r = reqs[i]!;
          Object.assign(r, { op: o.write ? 'write' : 'read', lba: o.lba, nblocks: o.n, error: null });
          if (o.write) {
            const bytes = new Uint8Array(o.n * 512).map((_, j) => (o.seed + j * 31) & 0xff);
            r.buf!.write(0, bytes);
            model.set(bytes, o.lba * 512);
          } else {
            r.buf!.fill(0xee);
          }
          batch.push(r);
        });
        assert.equal(core.submitBatch(batch, queue), batch.length);
        out.length = 0;
        await drive((async () => {
          while (out.length < batch.length) {
            core.pollCompletions(out);
            if (out.length < batch.length) await new Promise((r) => setImmediate(r));
          }
        })());
        assert.equal(out.length, batch.length);
        for (const r of out) {
          assert.equal(r.error, null);
          if (r.op === 'read') {
            assert.ok(Buffer.from((r.buf as FakeDma).bytes(0, r.nblocks * 512)).equals(Buffer.from(model.subarray(r.lba * 512, (r.lba + r.nblocks) * 512))));
          }
        }
      }), { numRuns: 40 });
      assert.equal(core.inFlight(), 0);
    }, { ioQueues: 4, queueDepth: 64 }));
}

test('promise API beyond queue depth waits for free slots and completes everything', () =>
  withDriver({ kind: 'ram', bytes: DISK_BYTES }, 'poll', async ({ core, heap, drive }) => {
    const buf = heap.alloc(100 * 512);
    const data = random(100 * 512);
    buf.write(0, data);
    await drive(Promise.all(Array.from({ length: 100 }, (_, i) => core.write(i, 1, buf, i * 512))));
    buf.fill(0);
    await drive(Promise.all(Array.from({ length: 100 }, (_, i) => core.read(i, 1, buf, i * 512))));
    assert.ok(Buffer.from(buf.bytes()).equals(Buffer.from(data)));
  }, { queueDepth: 8 }));

test('4096-byte blocks on an image file; data lands in the file after flush', () =>
  withImage(1 << 20, (path) => withDriver({ kind: 'file', path, blockSize: 4096 }, 'poll', async ({ core, heap, drive }) => {
    assert.equal(core.info().blockSize, 4096);
    assert.equal(core.info().blocks, 256);
    const buf = heap.alloc(3 * 4096);
    const data = random(3 * 4096);
    buf.write(0, data);
    await drive(core.write(255 - 2, 3, buf));
    await drive(core.flush());
    assert.ok(readFileSync(path).subarray(253 * 4096).equals(Buffer.from(data)));
  })));

test('NVMe status errors reach the caller with SCT/SC; malformed requests never reach the device', () =>
  withDriver({ kind: 'ram', bytes: DISK_BYTES }, 'poll', async ({ core, heap, drive, dev }) => {
    const buf = heap.alloc(4096);
    const blocks = core.info().blocks;
    await assert.rejects(drive(core.read(blocks - 1, 2, buf)), (e: unknown) => {
      assert.ok(e instanceof NvmeError);
      assert.equal(e.kind, 'status');
      assert.equal(e.sct, 0);
      assert.equal(e.sc, 0x80);
      assert.match(e.message, /read lba \d+ x2 .*SCT 0 SC 0x80 \(LBA out of range\)/);
      return true;
    });
    const before = dev.stats().commands;
    await assert.rejects(drive(core.read(0, 16, buf)), /too small/);
    await assert.rejects(drive(core.read(0, 0, buf)), /not a valid transfer/);
    await assert.rejects(drive(core.read(0, 1, buf, 2)), /aligned/);
    const gone = heap.alloc(512);
    gone.drop();
    await assert.rejects(drive(core.read(0, 1, gone)), /revoked/);
    assert.equal(dev.stats().commands, before, 'nothing was submitted');
    // The batched API reports the same errors through pollCompletions.
    const r: BlockRequest = { op: 'write', lba: blocks, nblocks: 1, buf, bufOff: 0, error: null };
    assert.equal(core.submitBatch([r]), 1);
    const out: BlockRequest[] = [];
    await drive((async () => { while (core.pollCompletions(out) === 0) await new Promise((res) => setImmediate(res)); })());
    assert.equal(out[0], r);
    assert.match(String(r.error?.message), /LBA out of range/);
    await drive(core.read(0, 1, buf)); // still healthy
  }));

for (const mode of ['poll', 'interrupt'] as const) {
  test(`${mode}: a command the device never completes fails with a timeout`, () =>
    withDriver({ kind: 'ram', bytes: DISK_BYTES }, mode, async ({ dev, core, heap, drive }) => {
      const buf = heap.alloc(4096);
      await drive(core.read(0, 1, buf));
      await dev.stop(); // the controller is gone: nothing will ever complete
      const t0 = performance.now();
      await assert.rejects(drive(core.read(0, 1, buf)), (e: unknown) => {
        assert.ok(e instanceof NvmeError);
        assert.equal(e.kind, 'timeout');
        assert.match(e.message, /read lba 0 x1 on queue 1 after 150 ms/);
        return true;
      });
      assert.ok(performance.now() - t0 >= 140);
      assert.equal(core.inFlight(), 1, 'the timed-out CID stays reserved until a reset');
    }, { timeoutMs: 150 }));
}

test('bring-up against a dead controller fails with a timeout, not a hang', async () => {
  const phys = new SharedArrayBuffer(1 << 20);
  const dev = await startNvme({ phys, backend: { kind: 'ram', bytes: 1 << 20 } });
  await dev.stop();
  Atomics.store(dev.bar0, 0, (1 & 0xff) << 24 | 63); // CAP.TO = 500 ms
  const heap = new FakeHeap(phys);
  const core = createNvmeCore({ bar0: dev.bar0, wakeWord: dev.wakeWord, alloc: heap.alloc, now: () => performance.now(), timeoutMs: 100 });
  await assert.rejects(core.init(), /enable: .*within 500 ms: timeout/);
});

test('options that would disable command timeouts or fail every command are refused', () => {
  const phys = new SharedArrayBuffer(1 << 16);
  const heap = new FakeHeap(phys);
  for (const timeoutMs of [Number.NaN, Infinity, 0, -5]) {
    assert.throws(
      () => createNvmeCore({ bar0: new Int32Array(new SharedArrayBuffer(1 << 14)), wakeWord: 0, alloc: heap.alloc, now: () => 0, timeoutMs }),
      (e: unknown) => e instanceof RangeError && e.message === `nvme: timeoutMs ${timeoutMs} must be a finite number of milliseconds > 0`,
    );
  }
});

test('reset with requests in flight fails them with a reset error, then I/O works again', () =>
  withDriver({ kind: 'ram', bytes: DISK_BYTES }, 'poll', async ({ core, heap, drive }) => {
    const buf = heap.alloc(32 * 4096);
    const reqs: BlockRequest[] = Array.from({ length: 32 }, (_, i) => ({ op: 'read', lba: i * 8, nblocks: 8, buf, bufOff: i * 4096, error: null }));
    assert.equal(core.submitBatch(reqs), 32);
    // Not driven: nothing reaps before the reset, so all 33 requests are outstanding in the driver
    // (whatever the controller already did with them).
    const pending = core.read(0, 1, buf);
    pending.catch(() => undefined);
    await core.reset();
    await assert.rejects(pending, /controller reset: reset/);
    const out: BlockRequest[] = [];
    core.pollCompletions(out);
    assert.equal(out.length, 32);
    for (const r of out) assert.match(String(r.error?.message), /controller reset/);
    assert.equal(core.inFlight(), 0);
    const data = random(4096);
    buf.write(0, data);
    await drive(core.write(5, 8, buf));
    buf.fill(0);
    await drive(core.read(5, 8, buf));
    assert.ok(Buffer.from(buf.bytes(0, 4096)).equals(Buffer.from(data)));
    await core.shutdown();
    assert.throws(() => core.info(), /not initialized/);
  }));
