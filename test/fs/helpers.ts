/**
 * Shared helpers for the fs tests: RAM images, a power-cut device, tree snapshots, fast-check
 * parameters that make every property reproducible from its printed seed.
 */
import fc from 'fast-check';
import { FileSystem, O_CREATE, O_RDWR } from '../../src/domains/fs/fs.js';
import type { BlockDevice } from '../../src/domains/fs/device.js';
import { decodeSuperblock, type Geometry, type Superblock, type Variant } from '../../src/domains/fs/format.js';
import type { DmaBytes } from '../../src/runtime/types.js';
import { HostBytes, hostAlloc } from '../../src/host/bytes.js';
import { RamBlockDevice, type ImageIO } from '../../src/host/fs-image.js';
import { mkfs, type MkfsOptions } from '../../src/host/mkfs.js';
import { fsck } from '../../src/host/fsck.js';

export async function ramFs(variant: Variant, sizeBytes: number, extra: Partial<MkfsOptions> = {}, nbuf?: number): Promise<{ dev: RamBlockDevice; fs: FileSystem }> {
  const dev = new RamBlockDevice(sizeBytes, 512);
  mkfs(dev, { variant, sizeBytes, ...extra });
  const fs = await FileSystem.mount(dev, { alloc: hostAlloc, nbuf });
  return { dev, fs };
}

export function mountRam(dev: BlockDevice, nbuf?: number): Promise<FileSystem> {
  return FileSystem.mount(dev, { alloc: hostAlloc, nbuf });
}

/** An mkfs image as bytes. */
export function mkfsImage(variant: Variant, sizeBytes: number, extra: Partial<MkfsOptions> = {}): Uint8Array {
  const ram = new RamBlockDevice(sizeBytes, 512);
  mkfs(ram, { variant, sizeBytes, ...extra });
  return ram.readAt(0, sizeBytes);
}

/**
 * fsck the image of the mounted `fs` after a sync: a live fs's log may hold committed but not yet
 * installed transactions (lazy installation, log.ts); fsck would check them as recovery will
 * apply them (with a warning), while these tests want the installed image itself checked.
 */
export async function assertCleanSynced(fs: FileSystem, target: ImageIO | string, allowWarnings = true): Promise<void> {
  await fs.sync();
  assertClean(target, allowWarnings);
}

/**
 * fsck `target` (an image or the path of an image file); throws with fsck's report (after `what`,
 * if given) unless clean — and, unless `allowWarnings`, without warnings (an orphan is one).
 */
export function assertClean(target: ImageIO | string, allowWarnings = true, what = ''): void {
  const r = fsck(target);
  if (!r.ok || (!allowWarnings && r.warnings.length)) {
    throw new Error(`${what ? `${what}: ` : ''}fsck failed:\n${r.errors.join('\n')}\nwarnings:\n${r.warnings.join('\n')}`);
  }
}

/** Stops applying writes after `limit` writes (a power cut); counts writes. */
export class PowerCutDevice implements BlockDevice {
  writes = 0;
  constructor(readonly inner: BlockDevice, public limit = Infinity) {}
  get blockSize(): number { return this.inner.blockSize; }
  get blockCount(): number { return this.inner.blockCount; }
  read(lba: number, buf: DmaBytes, count?: number): Promise<DmaBytes> { return this.inner.read(lba, buf, count); }
  async write(lba: number, buf: DmaBytes, count?: number): Promise<DmaBytes> {
    this.writes++;
    if (this.writes > this.limit) return buf;
    return this.inner.write(lba, buf, count);
  }
  flush(): Promise<void> { return this.inner.flush(); }
  free(buf: DmaBytes): void { this.inner.free(buf); }
}

/**
 * The reference run of a power-cut test: the tree after each call that wrote to `dev` (`record`
 * is called after each call), and the device write count by then.
 */
export async function referenceRecorder(fs: FileSystem, dev: PowerCutDevice): Promise<{ states: Map<string, string>[]; doneAt: number[]; record: () => Promise<void> }> {
  const states = [await snapshot(fs)];
  const doneAt = [dev.writes];
  const record = async (): Promise<void> => {
    if (dev.writes === doneAt[doneAt.length - 1]) return;
    doneAt.push(dev.writes);
    states.push(await snapshot(fs));
  };
  return { states, doneAt, record };
}

/**
 * After a power cut at write `k` of a reference run (`states`, `doneAt` from referenceRecorder),
 * the tree `got` must be the state after the last call completed by then (index `i`), or after the
 * call in flight (i + 1).
 */
export function cutStateMatches(states: Map<string, string>[], doneAt: number[], k: number, got: Map<string, string>): { ok: boolean; i: number } {
  const key = (s: Map<string, string>): string => JSON.stringify([...s].sort());
  let i = 0;
  while (i + 1 < doneAt.length && doneAt[i + 1]! <= k) i++;
  const want = key(got);
  return { ok: [states[i], states[i + 1]].some((s) => s !== undefined && key(s) === want), i };
}

export async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (c === code) return;
    throw new Error(`expected ${code}, got ${c}: ${(e as Error).message}`);
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

/** Snapshot of the whole tree: path -> content (files) or 'dir'. */
export async function snapshot(fs: FileSystem, dir = '/'): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const seen = new Set<number>([await fs.lookup(dir)]);
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d)) {
      if (e.name === '.' || e.name === '..') continue;
      const p = d === '/' ? `/${e.name}` : `${d}/${e.name}`;
      const st = await fs.stat(p);
      if (st.type === 1) {
        out.set(p, 'dir');
        if (!seen.has(st.ino)) { seen.add(st.ino); await walk(p); } // a corrupted image may loop
      }
      else out.set(p, Buffer.from(await fs.readFile(p)).toString('hex'));
    }
  };
  await walk(dir);
  return out;
}

/**
 * An image (`sizeBytes`) left with a committed, uninstalled log by a workload that never syncs
 * (what a power cut or a killed `redleaf boot` leaves): the fs is abandoned, not unmounted.
 */
export async function pendingLogImage(variant: Variant, sizeBytes: number): Promise<{ dev: RamBlockDevice; logHeaderAt: number }> {
  const { dev, fs } = await ramFs(variant, sizeBytes);
  await fs.mkdir('/d');
  for (let i = 0; i < 6; i++) {
    const f = await fs.open(`/d/f${i}`, O_CREATE | O_RDWR);
    await fs.write(f, 0, pattern(3 * fs.g.bsize + 17 * i, i));
    await fs.close(f);
  }
  await fs.unlink('/d/f2');
  // The xv6 variant's log is small (30 blocks): the last commit may have been installed; a few
  // small operations more leave one that is not.
  for (let i = 0; i < 8 && fs.log.uninstalled === 0; i++) await fs.mkdir(`/e${i}`);
  if (fs.log.uninstalled === 0) throw new Error('the workload left no committed entries in the log');
  return { dev, logHeaderAt: fs.sb.logstart * fs.g.bsize };
}

export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff; }
  return b;
}

/**
 * fast-check parameters: `numRuns` runs from a random seed, or — to reproduce a failure, whose
 * report prints `seed` and `path` and the error — FS_SEED=<seed> [FS_PATH=<path>] in the
 * environment. FS_RUNS=<n> overrides numRuns (for soak runs).
 */
export function fcParams<T>(numRuns: number, extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  const seed = process.env.FS_SEED;
  const path = process.env.FS_PATH;
  const runs = process.env.FS_RUNS;
  return {
    numRuns: runs !== undefined ? Number(runs) : numRuns, includeErrorInReport: true, ...extra,
    ...(seed !== undefined ? { seed: Number(seed) } : {}), ...(path !== undefined ? { path } : {}),
  };
}

/**
 * `n` cut points for a power-cut property, unbiased (fast-check's numbers lean towards the ends
 * of their range, which would put most cuts before the first write or after the last one).
 */
export function cutPoints(n: number): fc.Arbitrary<number[]> {
  return fc.array(fc.noBias(fc.nat()), { minLength: n, maxLength: n });
}

/** The distinct write counts in [0, total] the cut points name. */
export function cutsOf(points: number[], total: number): number[] {
  return [...new Set(points.map((p) => p % (total + 1)))];
}

/** The superblock of mkfs'ed `dev` (variant `g`), as on disk. */
export function superblockOf(dev: RamBlockDevice, g: Geometry): Superblock {
  return decodeSuperblock(g, new HostBytes(dev.readAt(g.sbOffset, 48)));
}

/**
 * Mark every block of the first `nbitmap` bitmap blocks of mkfs'ed `dev` (variant `g`) in use but
 * one: whatever is allocated next lies in a bitmap block of its own, in order.
 */
export function fragmentBitmaps(dev: RamBlockDevice, g: Geometry, nbitmap: number): void {
  const { bmapstart } = superblockOf(dev, g);
  for (let i = 0; i < nbitmap; i++) {
    const bits = new Uint8Array(g.bsize).fill(0xff);
    const bit = 5000;
    bits[bit >> 3]! &= ~(1 << (bit & 7));
    dev.writeAt((bmapstart + i) * g.bsize, bits);
  }
}

/**
 * A device whose next read after `holdNextRead()` waits until `release()`: `held` resolves when
 * that read arrives. The call making it stops there, holding whatever it holds (an inode lock, the
 * buffer), while the test runs other calls.
 */
export class ReadGate implements BlockDevice {
  held: Promise<void> = Promise.resolve();
  private arrived: (() => void) | null = null;
  private gate: Promise<void> = Promise.resolve();
  private opened: () => void = () => {};
  constructor(readonly inner: BlockDevice) {}
  get blockSize(): number { return this.inner.blockSize; }
  get blockCount(): number { return this.inner.blockCount; }
  holdNextRead(): void {
    this.held = new Promise((resolve) => (this.arrived = resolve));
    this.gate = new Promise((resolve) => (this.opened = resolve));
  }
  release(): void { this.opened(); }
  async read(lba: number, buf: DmaBytes, count?: number): Promise<DmaBytes> {
    const arrived = this.arrived;
    if (arrived) {
      this.arrived = null;
      arrived();
      await this.gate;
    }
    return this.inner.read(lba, buf, count);
  }
  write(lba: number, buf: DmaBytes, count?: number): Promise<DmaBytes> { return this.inner.write(lba, buf, count); }
  flush(): Promise<void> { return this.inner.flush(); }
  free(buf: DmaBytes): void { this.inner.free(buf); }
}

/** Let every call that can go on without I/O or a timer run as far as it can. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}
