/**
 * `redleaf bench nvme`: 4 KiB random/sequential reads and writes at batch 1 and 32 on a >= 1 GiB
 * image file (made in a temp dir, removed after), through
 *   driver  NvmeCore used directly by the host (no domain),
 *   domain  one crossing into the nvme driver domain,
 *   shadow  the crossing plus the block shadow,
 * against node-fs-promises (FileHandle.read/write, 32 in flight at batch 32), node-fs-sync
 * (fs.readSync/writeSync) and fio when installed (psync, libaio, io_uring: the best is reported).
 * Plus `recovery`: sequential 4 KiB read/write throughput through the shadow with the driver
 * crashed once per second vs. without crashes, and the median restart latency.
 *
 * Every path runs on the same file in the same run. Runs are time-boxed (scale stretches them).
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import { open as openAsync } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { median, progressBar, type BenchOptions, type ResultRow, type SuiteResult } from './harness.js';
import { BDevWorkload, BS, KINDS, lbaGen, requestDeque, tick, timed, type Kind } from './lib/blockio.js';
import { Kernel } from '../kernel/kernel.js';
import { KERNEL_OWNER } from '../kernel/heap.js';
import { startNvme } from '../devices/nvme/index.js';
import { NvmeCore, type BlockRequest } from '../domains/nvme/core.js';
import { bootStorage } from '../host/storage.js';
import type { BDev } from '../interfaces/index.js';
import type { DmaBytes } from '../runtime/types.js';

const BATCHES = [1, 32] as const;

export async function run(opts: BenchOptions): Promise<SuiteResult> {
  const runs = Math.max(1, opts.runs);
  const ms = Math.max(50, 400 * opts.scale);
  const dir = mkdtempSync(join(tmpdir(), 'redleaf-bench-nvme-'));
  const img = join(dir, 'disk.img');
  const imageBytes = 1 << 30;
  const blocks = imageBytes / BS;
  const results: ResultRow[] = [];
  const notes: string[] = [];
  const cases = KINDS.length * BATCHES.length;
  const bar = progressBar(opts, 'bench nvme', cases * 5 + 2 + 1);
  try {
    // A 1 GiB image with real contents (not holes), so reads hit data.
    const fd = openSync(img, 'w');
    ftruncateSync(fd, imageBytes);
    const chunk = Buffer.alloc(1 << 20);
    const fillBytes = Math.max(64 << 20, Math.min(imageBytes, Math.round(imageBytes * opts.scale)));
    for (let off = 0; off < fillBytes; off += chunk.length) {
      chunk.writeUInt32LE(off, 0);
      chunk.fill(off & 0xff, 4, 4096);
      writeSync(fd, chunk, 0, chunk.length, off);
    }
    fsyncSync(fd);
    closeSync(fd);
    bar.tick('image');
    // Random and sequential I/O stay inside the filled region.
    const span = fillBytes / BS;
    const row = (kind: Kind, b: number, path: string, kiops: number): void => {
      results.push({ case: `${kind}-4k-b${b}`, path, kiops: Math.round(kiops * 10) / 10 });
    };

    // ---- driver: NvmeCore in the host ----------------------------------------------------------
    {
      const kernel = new Kernel({ physBytes: 64 << 20 });
      const dev = await startNvme({ phys: kernel.heap.phys, backend: { kind: 'file', path: img, blockSize: BS }, name: 'bench-nvme' });
      try {
        const core = new NvmeCore({
          bar0: dev.bar0, wakeWord: dev.wakeWord, now: () => performance.now(),
          alloc: (n, a) => kernel.kit.allocBytes(KERNEL_OWNER, n, a) as unknown as DmaBytes,
        });
        await core.init();
        const reqs: BlockRequest[] = [];
        for (let i = 0; i < 32; i++) {
          reqs.push({ op: 'read', lba: 0, nblocks: 1, buf: kernel.kit.allocBytes(KERNEL_OWNER, BS, BS) as unknown as DmaBytes, bufOff: 0, error: null });
        }
        const out: BlockRequest[] = [];
        for (const kind of KINDS) {
          for (const b of BATCHES) {
            const next = lbaGen(kind, span);
            const op = kind.endsWith('read') ? 'read' : 'write';
            const batch = reqs.slice(0, b);
            for (const r of batch) r.op = op;
            const k = median(await Promise.all([0]).then(async () => {
              const xs: number[] = [];
              for (let i = 0; i < runs; i++) {
                xs.push(await timed(ms, () => {
                  for (const r of batch) r.lba = next();
                  core.submitBatch(batch);
                  let got = 0;
                  while (got < b) { out.length = 0; got += core.pollCompletions(out); }
                  return b;
                }, 64));
              }
              return xs;
            }));
            row(kind, b, 'driver', k);
            bar.tick(`driver ${kind} b${b}`);
          }
        }
        await core.shutdown();
      } finally {
        await dev.stop();
        kernel.shutdown();
      }
    }

    // ---- domain and shadow ----------------------------------------------------------------------
    const s = await bootStorage({ image: img, blockSize: BS, shadow: true, physBytes: 64 << 20 });
    try {
      for (const [path, bdev] of [['domain', s.driver], ['shadow', s.shadow!]] as [string, BDev][]) {
        for (const kind of KINDS) {
          for (const b of BATCHES) {
            const load = new BDevWorkload(s.kernel, bdev, kind, b, span);
            const xs: number[] = [];
            for (let i = 0; i < runs + 1; i++) {
              const k = await load.run(ms);
              if (i > 0) xs.push(k); // the first run warms the JIT
            }
            row(kind, b, path, median(xs));
            bar.tick(`${path} ${kind} b${b}`);
          }
        }
      }

      // ---- recovery ---------------------------------------------------------------------------
      const recMs = Math.max(2500, 4000 * opts.scale);
      for (const [kind, op] of [['read', 0], ['write', 1]] as const) {
        const measure = async (crash: boolean): Promise<{ mbps: number; restart: number[] }> => {
          const next = lbaGen('seqread', span);
          let dq = requestDeque(s.kernel, 32, op);
          const durs: number[] = [];
          const crashAt: number[] = [];
          const timer = crash ? setInterval(() => {
            s.kernel.injectFault(s.driverName, 'now');
            crashAt.push(performance.now());
          }, 1000) : null;
          const t0 = performance.now();
          let n = 0;
          let k = 0;
          const ends: number[] = [];
          try {
            while (performance.now() - t0 < recMs) {
              for (let j = 0; j < 32; j++) { const r = dq.pop()!; r.lba = next(); dq.push(r); }
              const a = performance.now();
              dq = await s.shadow!.submitAndPoll(dq);
              const e = performance.now();
              durs.push(e - a);
              ends.push(e);
              n += 32;
              if (++k % 8 === 0) await tick();
            }
          } finally {
            if (timer) clearInterval(timer);
          }
          const secs = (performance.now() - t0) / 1000;
          // Restart latency: the first batch finished after each crash, less a normal batch.
          const normal = median(durs);
          const restart = crashAt.map((c) => {
            const i = ends.findIndex((e) => e > c);
            return i < 0 ? NaN : Math.max(0, durs[i]! - normal);
          }).filter((x) => !Number.isNaN(x));
          return { mbps: (n * BS) / secs / 1e6, restart };
        };
        const base = await measure(false);
        const withCrash = await measure(true);
        results.push({
          case: `recovery-${kind}`, path: 'shadow',
          mbps_no_crash: Math.round(base.mbps * 10) / 10,
          mbps_crash_per_s: Math.round(withCrash.mbps * 10) / 10,
          restart_ms: Math.round(median(withCrash.restart) * 1000) / 1000,
        });
        bar.tick(`recovery ${kind}`);
      }
    } finally {
      await s.stop();
    }

    // ---- node fs ---------------------------------------------------------------------------------
    {
      const fh = await openAsync(img, 'r+');
      const fdS = openSync(img, 'r+');
      try {
        const bufs = Array.from({ length: 32 }, () => Buffer.alloc(BS, 7));
        for (const kind of KINDS) {
          const isRead = kind.endsWith('read');
          for (const b of BATCHES) {
            const next = lbaGen(kind, span);
            const ps: Promise<unknown>[] = new Array(b);
            const xs: number[] = [];
            for (let i = 0; i < runs; i++) {
              xs.push(await timed(ms, async () => {
                for (let j = 0; j < b; j++) {
                  const pos = next() * BS;
                  ps[j] = isRead ? fh.read(bufs[j]!, 0, BS, pos) : fh.write(bufs[j]!, 0, BS, pos);
                }
                await Promise.all(ps);
                return b;
              }));
            }
            row(kind, b, 'node-fs-promises', median(xs));
            bar.tick(`fs-promises ${kind} b${b}`);
            const ys: number[] = [];
            for (let i = 0; i < runs; i++) {
              ys.push(await timed(ms, () => {
                for (let j = 0; j < b; j++) {
                  const pos = next() * BS;
                  if (isRead) readSync(fdS, bufs[j]!, 0, BS, pos);
                  else writeSync(fdS, bufs[j]!, 0, BS, pos);
                }
                return b;
              }, 64));
            }
            row(kind, b, 'node-fs-sync', median(ys));
            bar.tick(`fs-sync ${kind} b${b}`);
          }
        }
      } finally {
        await fh.close();
        closeSync(fdS);
      }
    }

    // ---- fio ---------------------------------------------------------------------------------------
    let haveFio = true;
    try {
      execFileSync('fio', ['--version'], { stdio: 'pipe' });
    } catch {
      haveFio = false;
      notes.push('fio is not installed: no physical reference (apt-get install fio)');
    }
    if (haveFio) {
      const secs = Math.max(1, Math.round(2 * opts.scale));
      for (const kind of KINDS) {
        for (const b of BATCHES) {
          let best = 0;
          let bestEngine = '';
          for (const engine of b === 1 ? ['psync'] : ['psync', 'libaio', 'io_uring']) {
            try {
              const out = execFileSync('fio', [
                '--name=rl', `--filename=${img}`, `--rw=${({ randread: 'randread', randwrite: 'randwrite', seqread: 'read', seqwrite: 'write' } as const)[kind]}`, `--bs=${BS}`, `--size=${span * BS}`,
                `--ioengine=${engine}`, `--iodepth=${engine === 'psync' ? 1 : b}`, '--direct=0',
                `--runtime=${secs}`, '--time_based', '--output-format=json', '--invalidate=0',
              ], { stdio: ['ignore', 'pipe', 'pipe'], timeout: (secs + 20) * 1000 }).toString();
              const job = (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: { read: { iops: number }; write: { iops: number } }[] }).jobs[0]!;
              const iops = kind.endsWith('read') ? job.read.iops : job.write.iops;
              if (iops > best) { best = iops; bestEngine = engine; }
            } catch {
              /* engine unavailable here */
            }
          }
          if (best > 0) {
            row(kind, b, 'fio', best / 1000);
            notes.push(`fio ${kind}-4k-b${b}: best engine ${bestEngine}`);
          }
        }
      }
    }
    bar.tick('fio');
  } finally {
    bar.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { suite: 'nvme', node: process.version, results, notes };
}
