/**
 * Power cuts at the layer level (the FileSystem over a host RAM device that stops applying writes
 * after the k-th): random workloads of single-transaction steps; for cut points spread over the
 * run's writes, the remounted image is fsck-clean and shows the state after the last step that
 * completed before the cut, or after the step in flight (a rename among them: a file has its old
 * name or its new one, never none or both). The device-level counterpart, through
 * the fs domain and the NVMe model, is powercut-device.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { O_CREATE, O_RDWR, type FileSystem } from '../../src/domains/fs/fs.js';
import { PowerCutDevice, mountRam, assertClean, snapshot, pattern, fcParams, cutPoints, cutsOf, referenceRecorder, cutStateMatches } from './helpers.js';

type Op =
  | { k: 'mkdir'; d: number }
  | { k: 'write'; d: number; f: number; off: number; len: number; seed: number }
  | { k: 'unlink'; d: number; f: number }
  | { k: 'trunc'; d: number; f: number; len: number }
  | { k: 'rmdir'; d: number }
  | { k: 'rename'; from: string; to: string };

/** Files and directories a rename moves between: across and within directories, into and out of them. */
const renamePath = fc.constantFrom('/f0', '/f1', '/d1/f0', '/d1/f2', '/d2/f1', '/d1', '/d2', '/d1/d2', '/d2/d1');

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('mkdir' as const), d: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ k: fc.constant('write' as const), d: fc.integer({ min: 0, max: 2 }), f: fc.integer({ min: 0, max: 3 }), off: fc.integer({ min: 0, max: 20000 }), len: fc.integer({ min: 1, max: 12000 }), seed: fc.nat(1000) }),
  fc.record({ k: fc.constant('unlink' as const), d: fc.integer({ min: 0, max: 2 }), f: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ k: fc.constant('trunc' as const), d: fc.integer({ min: 0, max: 2 }), f: fc.integer({ min: 0, max: 3 }), len: fc.integer({ min: 0, max: 30000 }) }),
  fc.record({ k: fc.constant('rmdir' as const), d: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ k: fc.constant('rename' as const), from: renamePath, to: renamePath }),
);

const dirOf = (d: number): string => (d === 0 ? '' : `/d${d}`);

/** Run one workload op; `step` runs after each system call (each is one crash-atomic unit). */
async function runOp(fs: FileSystem, op: Op, step: () => Promise<void>): Promise<void> {
  try {
    switch (op.k) {
      case 'mkdir': if (op.d) await fs.mkdir(dirOf(op.d)); break;
      case 'rmdir': await fs.rmdir(dirOf(op.d)); break;
      case 'rename': await fs.rename(op.from, op.to); break;
      case 'unlink': await fs.unlink(`${dirOf(op.d)}/f${op.f}`); break;
      case 'trunc': {
        // ftruncate: a shrink is one transaction here (small files), but a grow of the xv6 variant
        // zero-fills (no holes) in transactions of maxOpBytes, like a write: grow in steps of that
        // size so that every state a cut may leave is one the oracle recorded.
        const f = await fs.open(`${dirOf(op.d)}/f${op.f}`, O_RDWR);
        await step();
        try {
          for (let size = (await fs.fstat(f)).size; size !== op.len; ) {
            size = Math.min(op.len, size + fs.maxOpBytes);
            await fs.ftruncate(f, size);
            await step();
          }
        } finally { await fs.close(f); }
        break;
      }
      case 'write': {
        // One write() call of <= maxOpBytes is one transaction.
        const f = await fs.open(`${dirOf(op.d)}/f${op.f}`, O_CREATE | O_RDWR);
        await step();
        try {
          const st = await fs.fstat(f);
          const off = Math.min(op.off, st.size);
          await fs.write(f, off, pattern(Math.min(op.len, fs.maxOpBytes), op.seed));
          await step();
        } finally { await fs.close(f); }
        break;
      }
    }
  } catch (e) {
    if (!(e as { code?: string }).code) throw e;
  }
  await step();
}

for (const variant of ['xv6', 'large'] as const) {
  const size = variant === 'xv6' ? 2000 * 1024 : 16 << 20;
  const base = new RamBlockDevice(size, 512);
  mkfs(base, { variant, sizeBytes: size, ...(variant === 'large' ? { nlog: 200, inodes: 256 } : {}) });

  test(`power cut at the k-th write (${variant}): remount is fsck-clean and holds every completed op`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 12 }), cutPoints(8), async (ops, cuts) => {
        // Reference run: states after each op and the write count at each completion.
        const ref = new PowerCutDevice(base.clone());
        const fs = await mountRam(ref);
        const { states, doneAt, record } = await referenceRecorder(fs, ref);
        for (const op of ops) await runOp(fs, op, record);
        const W = ref.writes;
        const ks = new Set(cutsOf(cuts, W));
        ks.add(W);
        for (const k of ks) {
          const raw = base.clone();
          const cut = new PowerCutDevice(raw, k);
          const cfs = await mountRam(cut);
          for (const op of ops) await runOp(cfs, op, async () => undefined).catch(() => undefined);
          // Power comes back: remount the raw device.
          const fs2 = await mountRam(raw);
          assertClean(raw);
          const { ok, i } = cutStateMatches(states, doneAt, k, await snapshot(fs2));
          assert.ok(ok, `cut at write ${k}/${W}: state after op ${i} (or ${i + 1}) expected`);
        }
      }),
      fcParams(variant === 'xv6' ? 150 : 60),
    );
  });
}

test('crash between the log header write and the install: recovery installs the transaction', async () => {
  const base = new RamBlockDevice(2000 * 1024, 512);
  mkfs(base, { variant: 'xv6', blocks: 2000 });
  const raw = base.clone();
  const dev = new PowerCutDevice(raw);
  const fs = await mountRam(dev);
  await fs.mkdir('/a');
  const f = await fs.open('/a/f', O_CREATE | O_RDWR);
  // The 3 new data blocks (1 KiB, written in place: ordered mode), the log blocks and the header
  // reach the disk; nothing after the commit point does.
  dev.limit = dev.writes + 5;
  await fs.write(f, 0, pattern(3000, 1));
  const fs2 = await mountRam(raw);
  assert.ok(fs2.recovered > 0);
  assert.deepEqual(await fs2.readFile('/a/f'), pattern(3000, 1));
  assertClean(raw, false);
});
