/**
 * `redleaf bench nvme`: 4 KiB random/sequential reads and writes at batch 1 and 32 on a >= 1 GiB
 * image file (made in a temp dir, removed after), through
 *   driver  the NvmeCore used directly by the host (no domain),
 *   domain  one crossing into the nvme driver domain,
 *   shadow  the crossing plus the block shadow,
 * against node-fs-promises (FileHandle.read/write, 32 in flight at batch 32), node-fs-sync
 * (fs.readSync/writeSync) and fio when installed (psync, libaio, io_uring: the best is reported).
 * Plus `recovery`: sequential 4 KiB read/write throughput (32-request batches) through the shadow
 * in one-second windows with one driver crash each vs. windows without, interleaved (at least 3
 * pairs, the order alternating, after a warm-up with two restarts) so that load drifting during the
 * run hits both alike; restart_ms: the median extra time of the first batch after a crash (restart
 * and reissue); back_to_speed_ms: the median time from a crash until 10 batches in a row are again
 * within 1.5x a normal one; crash_cost_ms: the median time lost in the 300 ms after a crash less
 * the same in quiet windows (an estimate of the loss, crash_cost_ms / 10 in percent, much less
 * noisy on a loaded machine than the window totals). The slow period after a restart used to be
 * most of a crash's cost, while V8 optimized a restarted driver's code again; now every instance
 * runs the same evaluated code (src/kernel/isolation.ts) with the same hidden classes
 * (src/domains/nvme/core.ts), so a restarted driver starts with its predecessor's optimized code.
 *
 * Every path runs on the same file in the same run; for each case the domain and shadow runs
 * alternate, and the shadow row says how it compares (harness.ts versus: vs_domain, and the lowest
 * and highest ratio of one run to the domain run beside it). Runs are time-boxed (scale stretches
 * them).
 * `--case PREFIX` runs only the cases whose name starts with PREFIX (e.g. `recovery`).
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import { open as openAsync } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { caseChooser, median, medianOf, progressBar, runsOf, versus, VERSUS_NOTE, warmupRestarts, type BenchOptions, type ResultRow, type SuiteResult } from './harness.js';
import { BDevWorkload, BS, KINDS, lbaGen, requestDeque, tick, timed, type Kind } from './lib/blockio.js';
import { Kernel } from '../kernel/kernel.js';
import { KERNEL_OWNER } from '../kernel/heap.js';
import { startNvme } from '../devices/nvme/index.js';
import { describeDataPath } from '../devices/nvme/fileio.js';
import { createNvmeCore, type BlockRequest } from '../domains/nvme/core.js';
import { bootStorage } from '../host/storage.js';
import type { BDev } from '../interfaces/index.js';
import type { DmaBytes } from '../runtime/types.js';

/** This suite takes `--case PREFIX` (see cmd-bench.ts). */
export const caseFilter = true;

const BATCHES = [1, 32] as const;
const RECOVERY = [['read', 0], ['write', 1]] as const;
/** Crash windows of the recovery warm-up (not measured). */
const WARMUP_RESTARTS = 2;
const ioCase = (kind: Kind, b: number): string => `${kind}-4k-b${b}`;
const recoveryCase = (kind: string): string => `recovery-${kind}`;

export async function run(opts: BenchOptions): Promise<SuiteResult> {
  const runs = Math.max(1, opts.runs);
  const ms = Math.max(50, 400 * opts.scale);
  const allIoCases = KINDS.flatMap((kind) => BATCHES.map((b) => ({ kind, b })));
  const wants = caseChooser('nvme', [...allIoCases.map(({ kind, b }) => ioCase(kind, b)), ...RECOVERY.map(([kind]) => recoveryCase(kind))], opts.only);
  const dir = mkdtempSync(join(tmpdir(), 'redleaf-bench-nvme-'));
  const img = join(dir, 'disk.img');
  const imageBytes = 1 << 30;
  const results: ResultRow[] = [];
  const notes: string[] = [];
  const ioCases = allIoCases.filter(({ kind, b }) => wants(ioCase(kind, b)));
  const recoveries = RECOVERY.filter(([kind]) => wants(recoveryCase(kind)));
  const bar = progressBar(opts, 'bench nvme', ioCases.length * 5 + recoveries.length + 2);
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
    notes.push(`nvme controller data path: ${describeDataPath()}`);
    // Random and sequential I/O stay inside the filled region.
    const span = fillBytes / BS;
    const row = (kind: Kind, b: number, path: string, kiops: number, extra: Partial<ResultRow> = {}): void => {
      results.push({ case: ioCase(kind, b), path, kiops: Math.round(kiops * 10) / 10, ...extra });
    };

    // ---- driver: NvmeCore in the host ----------------------------------------------------------
    if (ioCases.length > 0) {
      const kernel = new Kernel({ physBytes: 64 << 20 });
      const dev = await startNvme({ phys: kernel.heap.phys, iommu: kernel.heap.iommuTables, backend: { kind: 'file', path: img, blockSize: BS }, name: 'bench-nvme' });
      try {
        // The host-linked driver plays the kernel: the controller's IOMMU lets it reach the kernel's
        // memory, so the driver path pays the same DMA checks as a driver domain.
        dev.attach(KERNEL_OWNER);
        const core = createNvmeCore({
          bar0: dev.bar0, wakeWord: dev.wakeWord, now: () => performance.now(),
          alloc: (n, a) => kernel.kit.allocBytes(KERNEL_OWNER, n, a) as unknown as DmaBytes,
        });
        await core.init();
        const reqs: BlockRequest[] = [];
        for (let i = 0; i < 32; i++) {
          reqs.push({ op: 'read', lba: 0, nblocks: 1, buf: kernel.kit.allocBytes(KERNEL_OWNER, BS, BS) as unknown as DmaBytes, bufOff: 0, error: null });
        }
        const out: BlockRequest[] = [];
        for (const { kind, b } of ioCases) {
          const next = lbaGen(kind, span);
          const op = kind.endsWith('read') ? 'read' : 'write';
          const batch = reqs.slice(0, b);
          for (const r of batch) r.op = op;
          const kiops = await medianOf(runs, () => timed(ms, () => {
            for (const r of batch) r.lba = next();
            core.submitBatch(batch);
            let got = 0;
            while (got < b) { out.length = 0; got += core.pollCompletions(out); }
            return b;
          }, 64), 0);
          row(kind, b, 'driver', kiops);
          bar.tick(`driver ${kind} b${b}`);
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
      // Per case, the two paths' runs alternate (the order flipping every round), so that load
      // drifting during the measurement hits both alike and shadow/domain compares like with like.
      if (ioCases.length > 0) notes.push(VERSUS_NOTE);
      for (const { kind, b } of ioCases) {
        const paths = ([['domain', s.driver], ['shadow', s.shadow!]] as [string, BDev][]).map(([path, bdev]) => ({
          path, load: new BDevWorkload(s.kernel, bdev, kind, b, span),
        }));
        // The first round warms the JIT.
        const [domain, shadow] = await runsOf(runs, paths.map((p) => () => p.load.run(ms)));
        row(kind, b, 'domain', median(domain!));
        row(kind, b, 'shadow', median(shadow!), versus(domain!, shadow!));
        for (const p of paths) bar.tick(`${p.path} ${kind} b${b}`);
      }

      // ---- recovery ---------------------------------------------------------------------------
      // Interleaved one-second windows, without and with one crash each (the order alternates
      // per pair), so that machine load drifting during the measurement hits both sides alike.
      const pairs = Math.max(3, Math.round((Math.max(2500, 4000 * opts.scale)) / 1000));
      const windowMs = 1000;
      const crashAtMs = 100;
      /** How long after a crash (or the same point of a quiet window) crash_cost_ms looks. */
      const costSpanMs = 300;
      for (const [kind, op] of recoveries) {
        const next = lbaGen('seqread', span);
        let dq = requestDeque(s.kernel, 32, op);
        /** One window: 32-request batches for windowMs, the driver crashed at `crashAtMs` (-1: never). */
        const window = async (crashAfterMs: number): Promise<{ n: number; ms: number; durs: number[]; ends: number[]; crashAt: number; t0: number }> => {
          const durs: number[] = [];
          const ends: number[] = [];
          let crashAt = -1;
          const t0 = performance.now();
          let n = 0;
          let k = 0;
          while (performance.now() - t0 < windowMs) {
            if (crashAt < 0 && crashAfterMs >= 0 && performance.now() - t0 >= crashAfterMs) {
              crashAt = performance.now();
              s.kernel.injectFault(s.driverName, 'now');
            }
            for (let j = 0; j < 32; j++) { const r = dq.pop()!; r.lba = next(); dq.push(r); }
            const a = performance.now();
            dq = await s.shadow!.submitAndPoll(dq);
            const e = performance.now();
            durs.push(e - a);
            ends.push(e);
            n += 32;
            if (++k % 8 === 0) await tick();
          }
          return { n, ms: performance.now() - t0, durs, ends, crashAt, t0 };
        };
        // Warm-up: the JIT, and the first restarts of the driver. Those re-optimize some of its
        // code once (V8 learns that the calls in it may go to other closures of the same sites,
        // see src/kernel/isolation.ts); from then on a restarted driver runs its predecessor's
        // code, which is the steady state of one crash per second that the pairs measure.
        await window(-1);
        type CrashWindow = { durs: number[]; ends: number[]; crashAt: number };
        const warmups: CrashWindow[] = [];
        for (let i = 0; i < WARMUP_RESTARTS; i++) warmups.push(await window(crashAtMs));
        let quiet = { n: 0, ms: 0 };
        let crashy = { n: 0, ms: 0 };
        const normalDurs: number[] = [];
        const crashes: CrashWindow[] = [];
        const quietWindows: { durs: number[]; ends: number[]; t0: number }[] = [];
        for (let p = 0; p < pairs; p++) {
          for (const crash of p % 2 === 0 ? [false, true] : [true, false]) {
            const w = await window(crash ? crashAtMs : -1);
            if (crash) {
              crashy = { n: crashy.n + w.n, ms: crashy.ms + w.ms };
              crashes.push(w);
            } else {
              quiet = { n: quiet.n + w.n, ms: quiet.ms + w.ms };
              normalDurs.push(...w.durs);
              quietWindows.push(w);
            }
          }
        }
        const normal = median(normalDurs);
        /** The first batch a crash window finished after its crash (-1: none did). */
        const firstAfterCrash = (w: CrashWindow): number => w.ends.findIndex((e) => e > w.crashAt);
        /** A crash window's restart: its first batch after the crash (`i`), less a normal batch (NaN: none finished). */
        const restartOf = (w: CrashWindow, i = firstAfterCrash(w)): number => (i < 0 ? NaN : Math.max(0, w.durs[i]! - normal));
        const restart: number[] = [];
        const backToSpeed: number[] = [];
        for (const w of crashes) {
          const i = firstAfterCrash(w);
          if (i < 0) continue;
          restart.push(restartOf(w, i));
          // Back to speed: the first of 10 consecutive batches within 1.5x a normal one.
          for (let j = i; j + 10 <= w.durs.length; j++) {
            if (w.durs.slice(j, j + 10).every((d) => d <= 1.5 * normal)) {
              backToSpeed.push(w.ends[j]! - w.durs[j]! - w.crashAt);
              break;
            }
          }
        }
        /**
         * Time lost in the costSpanMs from `from`: the wall time the batches started in that span
         * took, less as many normal batches (so a crash's own cost and event-loop turns count).
         */
        const excess = (w: { durs: number[]; ends: number[] }, from: number): number => {
          let n = 0;
          let end = from;
          for (let i = 0; i < w.durs.length; i++) {
            const start = w.ends[i]! - w.durs[i]!;
            if (start < from) continue;
            if (start >= from + costSpanMs) break;
            n++;
            end = w.ends[i]!;
          }
          return end - from - n * normal;
        };
        const crashCost = median(crashes.map((w) => excess(w, w.crashAt))) - median(quietWindows.map((w) => excess(w, w.t0 + crashAtMs)));
        const mbps = (x: { n: number; ms: number }): number => Math.round(((x.n * BS) / (x.ms / 1000) / 1e6) * 10) / 10;
        results.push({
          case: recoveryCase(kind), path: 'shadow',
          mbps_no_crash: mbps(quiet),
          mbps_crash_per_s: mbps(crashy),
          restart_ms: Math.round(median(restart) * 1000) / 1000,
          ...warmupRestarts(warmups.map((w) => restartOf(w))),
          back_to_speed_ms: Math.round(median(backToSpeed) * 10) / 10,
          crash_cost_ms: Math.round(crashCost * 10) / 10,
        });
        bar.tick(`recovery ${kind}`);
      }
      if (recoveries.length > 0) {
        notes.push(
          `recovery: ${pairs} interleaved pairs of ${windowMs} ms windows (one crash ${crashAtMs} ms into each crash window) per kind, after a warm-up with ${WARMUP_RESTARTS} restarts (first_restart_ms / warmup_restarts_ms: those, measured as restart_ms is, in order); back_to_speed_ms is how long after a crash the restarted driver runs slow`,
          `recovery: crash_cost_ms = median time lost in the ${costSpanMs} ms after a crash less the same in quiet windows; crash_cost_ms / ${windowMs / 100} estimates the loss in percent, less noisy than the window totals on a loaded machine`,
        );
      }
    } finally {
      await s.stop();
    }

    // ---- node fs ---------------------------------------------------------------------------------
    if (ioCases.length > 0) {
      const fh = await openAsync(img, 'r+');
      const fdS = openSync(img, 'r+');
      try {
        const bufs = Array.from({ length: 32 }, () => Buffer.alloc(BS, 7));
        for (const { kind, b } of ioCases) {
          const isRead = kind.endsWith('read');
          const next = lbaGen(kind, span);
          const ps: Promise<unknown>[] = new Array(b);
          const promises = await medianOf(runs, () => timed(ms, async () => {
            for (let j = 0; j < b; j++) {
              const pos = next() * BS;
              ps[j] = isRead ? fh.read(bufs[j]!, 0, BS, pos) : fh.write(bufs[j]!, 0, BS, pos);
            }
            await Promise.all(ps);
            return b;
          }), 0);
          row(kind, b, 'node-fs-promises', promises);
          bar.tick(`fs-promises ${kind} b${b}`);
          const sync = await medianOf(runs, () => timed(ms, () => {
            for (let j = 0; j < b; j++) {
              const pos = next() * BS;
              if (isRead) readSync(fdS, bufs[j]!, 0, BS, pos);
              else writeSync(fdS, bufs[j]!, 0, BS, pos);
            }
            return b;
          }, 64), 0);
          row(kind, b, 'node-fs-sync', sync);
          bar.tick(`fs-sync ${kind} b${b}`);
        }
      } finally {
        await fh.close();
        closeSync(fdS);
      }
    }

    // ---- fio ---------------------------------------------------------------------------------------
    let haveFio = false;
    if (ioCases.length > 0) {
      try {
        execFileSync('fio', ['--version'], { stdio: 'pipe' });
        haveFio = true;
      } catch {
        notes.push('fio is not installed: no physical reference (apt-get install fio)');
      }
    }
    if (haveFio) {
      const secs = Math.max(1, Math.round(2 * opts.scale));
      for (const { kind, b } of ioCases) {
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
    bar.tick('fio');
  } finally {
    bar.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { suite: 'nvme', node: process.version, results, notes };
}
