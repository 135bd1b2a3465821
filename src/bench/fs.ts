/**
 * `redleaf bench fs`: the rv6 file system as a user program sees it. rv6 boots on a large-variant
 * image (made in a temp dir, removed after) holding /bin/{init,sh,echo,benchfs}; init starts the
 * shell and the suite types `benchfs -s SIZE -n FILES /` at the console: a sequential write and
 * read of one file in 4 KiB system calls, then creates and deletes of small files. Cases:
 *
 *   seqread-4k, seqwrite-4k, create, delete   per dev (membdev: the RAM disk; nvme: the NVMe
 *                                             controller model on the image file) and path
 *                                             (domain: the fs on the driver; shadow: on the block
 *                                             shadow; shadow-crash-per-s: the driver crashed once
 *                                             a second while benchfs runs)
 *   raw-seqread-4k, raw-seqwrite-4k           the bare block device, 4 KiB requests one at a time
 *                                             (the storage suite's workload) through the driver
 *                                             and the shadow, over the device's largest file
 *   node-fs-read, node-fs-write               Node's fs.readSync / writeSync in 4 KiB blocks on a
 *                                             host file as large as the largest benchmark file
 *                                             (page cache, no fsync)
 *
 * Two boots per device: the fs on the driver (domain), and the fs on the shadow, whose runs
 * alternate without and with the crashes (shadow, shadow-crash-per-s) so that the two see the
 * same machine. Each boot starts with two small warm-up benchfs runs, then --runs measured runs
 * per path, whose medians are reported. The second warm-up calibrates the boot's file size so
 * that write + read last about 4 s (× --scale, at least 1.5 s so that a crash every second lands
 * at least once), but at least twice the fs's buffer cache (reads must reach the device) and at
 * most what the image holds. Throughput is MB/s (10^6 bytes; benchfs prints MiB/s and is converted).
 */
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, progressBar, type BenchOptions, type ResultRow, type SuiteResult } from './harness.js';
import { BDevWorkload, BS } from './lib/blockio.js';
import { Kernel } from '../kernel/kernel.js';
import { programArtifactPath } from '../kernel/paths.js';
import { mkfs } from '../host/mkfs.js';
import { bootRv6, type Rv6System } from '../host/rv6.js';
import { bootMembdev, bootStorage, loadBlockShadow } from '../host/storage.js';
import type { BDev } from '../interfaces/block.js';

const MiB = 1 << 20;
const DEVS = ['membdev', 'nvme'] as const;
type Dev = (typeof DEVS)[number];
type Path = 'domain' | 'shadow' | 'shadow-crash-per-s';
/**
 * The boots of one device: the fs on the driver, and the fs on the block shadow, whose runs
 * alternate between no crash and a crash every second so that both see the same machine load.
 */
const BOOTS: { shadow: boolean; paths: Path[] }[] = [
  { shadow: false, paths: ['domain'] },
  { shadow: true, paths: ['shadow', 'shadow-crash-per-s'] },
];
/** The programs the image needs: init opens the console and runs sh, which runs benchfs and echo. */
const PROGRAMS = ['init', 'sh', 'echo', 'benchfs'];
/** The warm-up (and calibration) run's file size at scale 1, and its file count. */
const WARMUP_BYTES = 2 * MiB;
const WARMUP_FILES = 50;
/**
 * The smallest benchmark file at scale 1: twice the fs's default buffer cache on the large
 * variant (512 blocks of 4 KiB), so that the read pass goes to the device (a sequential scan of a
 * file larger than an LRU cache misses on every block) however slow writes are.
 */
const MIN_FILE = 4 * MiB;
/** Beyond the benchmark file: metadata, the small files, the programs. */
const IMAGE_SLACK = 64 * MiB;
const CRASH_PERIOD_MS = 1000;
/** When the first crash of a crash run comes. */
const FIRST_CRASH_MS = 200;
/** Longest wait for one benchfs run (a hang fails the suite with the console output). */
const RUN_TIMEOUT_MS = 10 * 60_000;
/** What the shell echoes after benchfs, with its exit status. */
const STATUS_MARK = 'benchfs-status';

/** benchfs's result line (MiB/s and operations per second). */
export interface BenchfsResult {
  seqwrite_mbps: number;
  seqread_mbps: number;
  create_per_s: number;
  delete_per_s: number;
}

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const round1 = (x: number): number => Math.round(x * 10) / 10;
const MIB_TO_MB = MiB / 1e6;

/** rv6 booted with init and an interactive shell on the console, and the text it printed. */
class Rv6Console {
  private constructor(readonly sys: Rv6System, private readonly text: { out: string }) {}

  static async boot(dev: Dev, image: string, shadow: boolean): Promise<Rv6Console> {
    const text = { out: '' };
    const sys = await bootRv6({
      ...(dev === 'membdev' ? { membdevImage: image } : { image }),
      shadow,
      physBytes: 64 * MiB,
      console: (t) => void (text.out += t),
      log: () => {},
    });
    const c = new Rv6Console(sys, text);
    try {
      const r = await sys.core.boot('/bin/init', 'init');
      if (r !== 0) throw new Error(`bench fs: rv6 did not boot /bin/init: ${r}`);
      await c.until(() => text.out.includes('$ '), 'the shell prompt', 60_000);
    } catch (e) {
      await sys.stop();
      throw e;
    }
    return c;
  }

  private async until(done: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const t0 = performance.now();
    while (!done()) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`bench fs: timed out waiting for ${what}; console:\n${this.text.out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Run `benchfs ARGS` at the shell; its result, or an error with what the console showed. */
  async benchfs(args: string): Promise<BenchfsResult> {
    this.text.out = '';
    this.sys.core.consoleInput(`benchfs ${args} /; echo ${STATUS_MARK} $?\n`);
    const mark = new RegExp(`^${STATUS_MARK} (\\d+)$`, 'm');
    await this.until(() => mark.test(this.text.out), `benchfs ${args}`, RUN_TIMEOUT_MS);
    const status = Number(mark.exec(this.text.out)![1]);
    const line = this.text.out.split('\n').find((l) => l.startsWith('{"seqwrite_mbps"'));
    if (status !== 0 || line === undefined) throw new Error(`bench fs: benchfs ${args} failed (status ${status}); console:\n${this.text.out}`);
    return JSON.parse(line) as BenchfsResult;
  }

  stop(): Promise<void> {
    return this.sys.stop();
  }
}

/**
 * Crash the block driver once a second until stopped, the first FIRST_CRASH_MS in (so a run of
 * d seconds sees about d crashes, not floor(d), and even a short run at a small --scale sees
 * one); counts the crashes injected.
 */
function crashEverySecond(sys: Rv6System): { stop(): number } {
  let crashes = 0;
  let interval: ReturnType<typeof setInterval> | null = null;
  const crash = (): void => {
    try {
      sys.kernel.injectFault(sys.driverName, 'now');
      crashes++;
    } catch {
      // the driver is between death and restart: nothing to crash this second
    }
  };
  const first = setTimeout(() => {
    crash();
    interval = setInterval(crash, CRASH_PERIOD_MS);
  }, FIRST_CRASH_MS);
  return {
    stop() {
      clearTimeout(first);
      if (interval !== null) clearInterval(interval);
      return crashes;
    },
  };
}

/** A directory with bin/<program> for each program the image needs, as the build made them. */
function programsRoot(dir: string): string {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const p of PROGRAMS) copyFileSync(programArtifactPath(p), join(root, 'bin', p));
  return root;
}

/**
 * Benchmark file bounds in whole MiB, scaled (the image is the largest plus slack). The upper
 * bound never drops below 64 MiB: at a small --scale a run must still last past the first
 * crash of the crash-per-second case on a fast membdev.
 */
export function fileBounds(scale: number): { min: number; max: number } {
  return {
    min: Math.max(1, Math.round((MIN_FILE / MiB) * Math.min(1, scale))) * MiB,
    max: Math.max(64, Math.min(1024, Math.round(512 * scale))) * MiB,
  };
}

/** A file size (whole MiB) for which write + read at the warm-up's rates take `seconds`, within the bounds. */
export function calibratedSize(warm: BenchfsResult, seconds: number, bounds: { min: number; max: number }): number {
  const secondsPerMiB = 1 / warm.seqwrite_mbps + 1 / warm.seqread_mbps;
  return Math.max(bounds.min, Math.min(bounds.max, Math.floor(seconds / secondsPerMiB) * MiB));
}

/** The raw BDev baseline of `dev`: the storage suite's sequential 4 KiB workload, one request at a time. */
async function rawBaseline(
  dev: Dev, image: string, bytes: number, opts: BenchOptions, row: (r: ResultRow) => void, tick: (label: string) => void,
): Promise<void> {
  const ms = Math.max(100, 1000 * opts.scale);
  let kernel: Kernel;
  let bdevs: [string, BDev][];
  let stop: () => Promise<void>;
  if (dev === 'membdev') {
    kernel = new Kernel({ physBytes: 64 * MiB });
    const driver = bootMembdev(kernel, { bytes });
    bdevs = [['domain', driver], ['shadow', loadBlockShadow(kernel, 'membdev')]];
    stop = async () => kernel.shutdown();
  } else {
    // The block size rv6 runs the NVMe stack with (bootStorage's default).
    const s = await bootStorage({ image, shadow: true, physBytes: 64 * MiB });
    kernel = s.kernel;
    bdevs = [['domain', s.driver], ['shadow', s.shadow!]];
    stop = () => s.stop();
  }
  try {
    for (const [path, bdev] of bdevs) {
      for (const kind of ['seqread', 'seqwrite'] as const) {
        const load = new BDevWorkload(kernel, bdev, kind, 1, bytes / BS);
        await load.run(ms); // warms the JIT
        const xs: number[] = [];
        for (let i = 0; i < opts.runs; i++) xs.push(await load.run(ms));
        row({ case: `raw-${kind}-4k`, dev, path, mbps: round1((median(xs) * 1000 * BS) / 1e6) });
        tick(`raw ${dev} ${path} ${kind}`);
      }
    }
  } finally {
    await stop();
  }
}

/** Node's fs on a host file of `bytes`: sequential 4 KiB writeSync (a fresh file), then readSync; MB/s each. */
function nodeFsOnce(file: string, bytes: number): { write: number; read: number } {
  const buf = Buffer.alloc(BS, 'benchfs ');
  let fd = openSync(file, 'w');
  const t0 = performance.now();
  try {
    for (let pos = 0; pos < bytes; pos += BS) writeSync(fd, buf, 0, BS, pos);
  } finally {
    closeSync(fd);
  }
  const t1 = performance.now();
  fd = openSync(file, 'r');
  try {
    for (let pos = 0; pos < bytes; pos += BS) {
      if (readSync(fd, buf, 0, BS, pos) !== BS) throw new Error(`bench fs: short read of ${file} at ${pos}`);
    }
  } finally {
    closeSync(fd);
  }
  const t2 = performance.now();
  return { write: mbps(bytes, t1 - t0), read: mbps(bytes, t2 - t1) };
}

export async function run(opts: BenchOptions): Promise<SuiteResult> {
  const runs = Math.max(1, opts.runs);
  const seconds = Math.max(1.5, 4 * opts.scale);
  const files = Math.max(50, Math.round(1000 * opts.scale));
  const bounds = fileBounds(opts.scale);
  const warmupBytes = Math.max(256 << 10, Math.round((WARMUP_BYTES * Math.min(1, opts.scale)) / BS) * BS);
  const results: ResultRow[] = [];
  const notes: string[] = [];
  const bar = progressBar(opts, 'bench fs', DEVS.length * (BOOTS.length + 3 * runs + 4) + 1);
  const dir = mkdtempSync(join(tmpdir(), 'redleaf-bench-fs-'));
  const sizes: number[] = [];
  try {
    const root = programsRoot(dir);
    for (const dev of DEVS) {
      const image = join(dir, `${dev}.img`);
      mkfs(image, { variant: 'large', sizeBytes: bounds.max + IMAGE_SLACK, addDirs: [root] });
      let devBytes = 0;
      for (const boot of BOOTS) {
        const con = await Rv6Console.boot(dev, image, boot.shadow);
        const got = new Map<Path, BenchfsResult[]>(boot.paths.map((p) => [p, []]));
        let crashes = 0;
        try {
          // Calibrated on the second warm-up run: the first one runs benchfs cold, and every
          // later exec of a program starts with the code V8 optimized in the earlier ones
          // (src/kernel/isolation.ts), so it would make the measured runs too short.
          await con.benchfs(`-s ${warmupBytes} -n ${WARMUP_FILES}`);
          const warm = await con.benchfs(`-s ${warmupBytes} -n ${WARMUP_FILES}`);
          const size = calibratedSize(warm, seconds, bounds);
          devBytes = Math.max(devBytes, size);
          bar.tick(`${dev} ${boot.paths[0]} warm-up`);
          for (let i = 0; i < runs; i++) {
            for (const path of boot.paths) {
              const crasher = path === 'shadow-crash-per-s' ? crashEverySecond(con.sys) : null;
              try {
                got.get(path)!.push(await con.benchfs(`-s ${size} -n ${files}`));
              } finally {
                crashes += crasher?.stop() ?? 0;
              }
              bar.tick(`${dev} ${path} run ${i + 1}`);
            }
          }
          let note = `${dev} ${boot.paths.join(' and ')}: benchfs -s ${size} -n ${files} (file ${size / MiB} MiB)`;
          if (boot.paths.includes('shadow-crash-per-s')) {
            // A crash injected after a run's last block I/O is not recovered yet: the shadow
            // restarts its driver when the next call meets the death. Make that call (a flush
            // through the shadow), so the note says whether every crash was recovered.
            await con.sys.kernel.bind<BDev>(con.sys.bdevName).flush();
            const driver = con.sys.kernel.list().find((d) => d.name === con.sys.driverName);
            note += `, runs alternating on one boot; ${crashes} crashes injected over ${runs} crash run(s), the ${con.sys.driverName} driver restarted ${driver?.restarts ?? 0} times and ${driver?.state ?? 'gone'}`;
          }
          notes.push(note);
        } finally {
          await con.stop();
        }
        for (const path of boot.paths) {
          const med = (f: (r: BenchfsResult) => number): number => median(got.get(path)!.map(f));
          const crashField: ResultRow = path === 'shadow-crash-per-s' ? { crashes } : {};
          results.push(
            { case: 'seqread-4k', dev, path, mbps: round1(med((r) => r.seqread_mbps) * MIB_TO_MB), ...crashField },
            { case: 'seqwrite-4k', dev, path, mbps: round1(med((r) => r.seqwrite_mbps) * MIB_TO_MB), ...crashField },
            { case: 'create', dev, path, per_s: Math.round(med((r) => r.create_per_s)) },
            { case: 'delete', dev, path, per_s: Math.round(med((r) => r.delete_per_s)) },
          );
        }
      }
      sizes.push(devBytes);
      await rawBaseline(dev, image, devBytes, opts, (r) => results.push(r), (label) => bar.tick(label));
    }
    notes.push(`images: ${(bounds.max + IMAGE_SLACK) / MiB} MiB, large variant; raw cases over the device's largest file size`);

    const bytes = Math.max(...sizes);
    const file = join(dir, 'node-fs.dat');
    nodeFsOnce(file, bytes); // warms the page cache and the JIT
    const node: { write: number; read: number }[] = [];
    for (let i = 0; i < runs; i++) node.push(nodeFsOnce(file, bytes));
    results.push(
      { case: 'node-fs-read', mbps: round1(median(node.map((r) => r.read))) },
      { case: 'node-fs-write', mbps: round1(median(node.map((r) => r.write))) },
    );
    notes.push(`node-fs: fs.writeSync / readSync of 4 KiB blocks on a ${bytes / MiB} MiB host file (page cache, no fsync)`);
    bar.tick('node fs');
  } finally {
    bar.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  notes.push('MB/s = 10^6 bytes per second; create and delete: small files per second');
  return { suite: 'fs', node: process.version, results, notes };
}
