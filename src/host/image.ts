/**
 * Bootable rv6 images on the host: install the user programs (/bin/<name> holds the program's
 * .rldom artifact text, exactly the bytes the build wrote to dist/artifacts/programs) and the
 * console device node (/dev/console, major DEV_CONSOLE) into an image, create the default image
 * `redleaf boot` uses, and refresh an image whose programs a rebuild has made stale.
 *
 * Everything goes through the rv6 file system's own code (src/domains/fs, run on the host over a
 * FileBlockDevice, as `redleaf cp` does; for `boot --membdev`, over a copy in memory), so an
 * installed image is exactly what the fs domain will read. `boot --read-only` installs nothing:
 * it only compares, on a read-only mount, and says what is missing or stale.
 *
 * Invariants:
 *  - installation is idempotent: a /bin file already byte-identical to the build's is not
 *    rewritten, so refreshing an up-to-date image writes nothing;
 *  - the default image is made under a temporary name and renamed into place once complete and
 *    durable: an interrupted first run never leaves a half-made default image behind;
 *  - /bin files that are not built programs (the user's own) are left alone;
 *  - installing defers the device flushes the fs's log asks for to one fsync at the end (writes
 *    still reach the image file in order, so a crash of this process leaves a prefix the log
 *    recovers; only a power cut in the middle of an install could damage the image). The fs would
 *    otherwise fsync three times per transaction of 3 KiB on xv6 images: seconds per install.
 */
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import type { BlockDevice } from '../domains/fs/device.js';
import { FileSystem, FsError } from '../domains/fs/fs.js';
import type { DmaBytes } from '../runtime/types.js';
import { T_DEVICE, T_DIR } from '../domains/fs/format.js';
import { DEV_CONSOLE } from '../interfaces/rv6.js';
import { programsDir } from '../kernel/paths.js';
import { hostAlloc } from './bytes.js';
import { FileBlockDevice, RamBlockDevice } from './fs-image.js';
import { fsck } from './fsck.js';
import { hostReason, replaceFile } from './host-files.js';
import { mkfs } from './mkfs.js';
import { formatSize } from './sizes.js';

/** The default image: xv6's format (images stay mountable by xv6), room for programs and files. */
export const DEFAULT_IMAGE = { variant: 'xv6', sizeBytes: 64 * 2 ** 20, inodes: 1024 } as const;

/** The image `redleaf boot` uses without --disk: $REDLEAF_IMAGE, else .redleaf/rv6.img here. */
export function defaultImagePath(): string {
  return process.env.REDLEAF_IMAGE || npath.join(process.cwd(), '.redleaf', 'rv6.img');
}

export class ImageError extends Error {}

export interface BuiltProgram {
  name: string;
  bytes: Uint8Array;
}

/** The user programs the build produced, sorted by name. */
export function builtPrograms(dir = programsDir): BuiltProgram[] {
  let names: string[];
  try {
    names = nfs.readdirSync(dir).filter((n) => n.endsWith('.rldom')).sort();
  } catch {
    names = [];
  }
  if (names.length === 0) throw new ImageError(`no user programs in ${dir}: build them first (npm run build)`);
  return names.map((n) => ({ name: n.slice(0, -'.rldom'.length), bytes: new Uint8Array(nfs.readFileSync(npath.join(dir, n))) }));
}

/** A device whose flushes are deferred to `flushNow` (see the header: installs only). */
class DeferredFlushDevice implements BlockDevice {
  constructor(private readonly dev: BlockDevice) {}
  get blockSize(): number {
    return this.dev.blockSize;
  }
  get blockCount(): number {
    return this.dev.blockCount;
  }
  read(lba: number, buf: DmaBytes, count?: number): Promise<DmaBytes> {
    return this.dev.read(lba, buf, count);
  }
  write(lba: number, buf: DmaBytes, count?: number): Promise<DmaBytes> {
    return this.dev.write(lba, buf, count);
  }
  async flush(): Promise<void> {}
  free(buf: DmaBytes): void {
    this.dev.free(buf);
  }
  flushNow(): Promise<void> {
    return this.dev.flush();
  }
}

/** The boot block and superblock of either variant: a file smaller cannot be an rv6 image. */
const MIN_IMAGE_BYTES = 8192;

/** Why a file of `size` bytes is no rv6 image, or null if it may be one (its real size, not whole blocks). */
export function tooSmallForImage(size: number): string | null {
  return size < MIN_IMAGE_BYTES ? `not an rv6 file-system image: ${size} bytes, too small to hold one (at least ${MIN_IMAGE_BYTES})` : null;
}

export interface ImageFsOptions {
  /** One fsync at the end instead of the log's (for installs, see the header). */
  deferFlushes?: boolean;
  /** Refuse (ImageError) an image fsck finds damaged, before mounting it (for writers, see the header). */
  refuseDamaged?: boolean;
  /**
   * Mount read-only (for commands that only read): the image file is opened for reading only and
   * never written, a pending log is seen as recovered but left in place (FileSystem's readOnly),
   * so an image the user may not write, or one on a read-only mount, can be read.
   */
  readOnly?: boolean;
  /** What else to do than make the image writable, said when it is not (e.g. boot's --read-only). */
  unwritableHint?: string;
}

/** Why `what` cannot open `image` (a host error from opening it), in words that say what to do. */
function openRefusal(image: string, what: string, readOnly: boolean, e: unknown, hint?: string): ImageError {
  const code = (e as NodeJS.ErrnoException).code;
  if (!readOnly && (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')) {
    const why = code === 'EROFS' ? 'it is on a read-only file system' : 'you do not have write permission on it';
    const fix = code === 'EROFS' ? `work on a copy of it somewhere writable` : `make it writable (chmod u+w ${image}) or work on a writable copy`;
    return new ImageError(`${what}: cannot write to image ${image} (${code}): ${why}, and ${what} writes to the image; ${fix}${hint !== undefined ? `, or ${hint}` : ''}`);
  }
  return new ImageError(`${what}: cannot open image ${image}: ${hostReason(e)}`);
}

/**
 * Refuse to write into `image` — or, `inMemory`, into a copy of it in memory — if fsck finds it
 * damaged; an image without a usable superblock is left to the mount, whose message says why it
 * is not an rv6 image. The copy is refused too: the damage (a cleared bitmap hands out blocks that
 * files hold) would spread through the session, though not into the file.
 */
function refuseIfDamaged(image: string, what: string, inMemory: boolean): void {
  const r = fsck(image);
  if (r.ok || r.stats.variant === undefined) return;
  const n = r.errors.length;
  const refusal = inMemory
    ? `refusing to use it, even in memory, where writing would spread the damage through the session (see: redleaf fsck ${image}; ${what} --no-check uses it anyway)`
    : `refusing to write to it, which could damage it further (see: redleaf fsck ${image}; ${what} --no-check writes anyway)`;
  throw new ImageError(`${what}: ${image} is damaged (fsck found ${n} error${n === 1 ? '' : 's'}, the first: ${r.errors[0]}); ${refusal}`);
}

/** Refuse (ImageError) an `image` that is missing, not a file, too small, or (if asked) damaged. */
function checkImageFile(image: string, what: string, refuseDamaged: boolean, inMemory = false): void {
  let st: nfs.Stats;
  try {
    st = nfs.statSync(image);
  } catch {
    throw new ImageError(`${what}: image ${image} does not exist (make one with: redleaf mkfs ${image})`);
  }
  if (!st.isFile()) throw new ImageError(`${what}: image ${image} is not a regular file`);
  const small = tooSmallForImage(st.size);
  if (small !== null) throw new ImageError(`${what}: ${image}: ${small}`);
  if (refuseDamaged) refuseIfDamaged(image, what, inMemory);
}

/** Mount `dev` (image `image`), an FsError from the mount said as an ImageError of `what`. */
async function mountImage(dev: BlockDevice, image: string, what: string, readOnly: boolean): Promise<FileSystem> {
  try {
    return await FileSystem.mount(dev, { alloc: hostAlloc, readOnly });
  } catch (e) {
    throw e instanceof FsError ? new ImageError(`${what}: ${image}: not a usable rv6 image (${e.message})`) : e;
  }
}

/**
 * As withImageFs, on a copy of `image` in memory (the file is only read): `fn`'s result and the
 * copy's bytes after it, for `boot --membdev`, whose RAM disk gets the programs installed while
 * the file stays as it was (its changes are not kept, and it may be an image the user may not write).
 */
export async function withImageCopy<T>(image: string, what: string, fn: (fs: FileSystem) => Promise<T>, o: { refuseDamaged: boolean }): Promise<{ result: T; bytes: Uint8Array }> {
  checkImageFile(image, what, o.refuseDamaged, true);
  let file: Uint8Array;
  try {
    file = nfs.readFileSync(image);
  } catch (e) {
    throw new ImageError(`${what}: cannot read image ${image}: ${hostReason(e)}`);
  }
  const dev = new RamBlockDevice(file.length - (file.length % 512), 512);
  dev.writeAt(0, file.subarray(0, dev.sizeBytes));
  const fs = await mountImage(dev, image, what, false);
  const result = await fn(fs);
  await fs.unmount();
  const bytes = new Uint8Array(file.length);
  bytes.set(dev.readAt(0, dev.sizeBytes));
  bytes.set(file.subarray(dev.sizeBytes), dev.sizeBytes);
  return { result, bytes };
}

/**
 * Mount the rv6 image `image` on the host, run `fn`, unmount (commit + fsync). `what` prefixes
 * error messages (the command's name). A command that only reads passes `readOnly` (it then
 * never writes the image, whether or not it could: reading does not install a pending log); one
 * that writes is refused, with what to do, an image the user may not write.
 */
export async function withImageFs<T>(image: string, what: string, fn: (fs: FileSystem) => Promise<T>, opts: ImageFsOptions = {}): Promise<T> {
  checkImageFile(image, what, opts.refuseDamaged ?? false);
  const readOnly = opts.readOnly ?? false;
  let dev: FileBlockDevice;
  try {
    dev = new FileBlockDevice(image, 512, readOnly);
  } catch (e) {
    throw openRefusal(image, what, readOnly, e, opts.unwritableHint);
  }
  const deferred = opts.deferFlushes ? new DeferredFlushDevice(dev) : null;
  try {
    const fs = await mountImage(deferred ?? dev, image, what, readOnly);
    let result: T;
    try {
      result = await fn(fs);
    } catch (e) {
      await fs.unmount().catch(() => undefined);
      throw e;
    }
    await fs.unmount();
    await deferred?.flushNow();
    return result;
  } finally {
    dev.close();
  }
}

async function statOrNull(fs: FileSystem, path: string): Promise<{ type: number; major: number; size: number } | null> {
  try {
    return await fs.stat(path);
  } catch (e) {
    if (e instanceof FsError && e.code === 'ENOENT') return null;
    throw e;
  }
}

/** Make directory `path` unless it exists; whether it was made. */
async function ensureDir(fs: FileSystem, path: string): Promise<boolean> {
  const st = await statOrNull(fs, path);
  if (st === null) {
    await fs.mkdir(path);
    return true;
  }
  if (st.type !== T_DIR) throw new ImageError(`${path} exists in the image but is not a directory`);
  return false;
}

async function compareFile(fs: FileSystem, path: string, want: Uint8Array): Promise<'missing' | 'different' | 'same'> {
  const st = await statOrNull(fs, path);
  if (st === null) return 'missing';
  if (st.size !== want.length) return 'different';
  return Buffer.compare(await fs.readFile(path), want) === 0 ? 'same' : 'different';
}

/** Whether the image has the console device /dev/console (ImageError if the name is something else). */
async function hasConsole(fs: FileSystem): Promise<boolean> {
  const con = await statOrNull(fs, '/dev/console');
  if (con !== null && (con.type !== T_DEVICE || con.major !== DEV_CONSOLE)) {
    throw new ImageError(`/dev/console exists in the image but is not the console device (major ${DEV_CONSOLE})`);
  }
  return con !== null;
}

/** What installSystem would change in an image, found without writing (for a read-only mount). */
export interface SystemDrift {
  /** Built programs /bin lacks. */
  missing: string[];
  /** /bin programs that differ from the build's (an older or other build's). */
  stale: string[];
  /** /dev/console is missing. */
  noConsole: boolean;
}

/** Compare the image's /bin and /dev/console with what installSystem makes; writes nothing. */
export async function systemDrift(fs: FileSystem, programs: BuiltProgram[]): Promise<SystemDrift> {
  const drift: SystemDrift = { missing: [], stale: [], noConsole: !(await hasConsole(fs)) };
  for (const p of programs) {
    const have = await compareFile(fs, `/bin/${p.name}`, p.bytes);
    if (have === 'missing') drift.missing.push(p.name);
    else if (have === 'different') drift.stale.push(p.name);
  }
  return drift;
}

export interface InstallResult {
  /** Programs written to /bin (missing or different from the build's). */
  written: string[];
  /** Whether /dev/console had to be made. */
  madeConsole: boolean;
  /** Inodes allocated (directories, the console, new program files). */
  newInodes: number;
}

/**
 * Make the image bootable: /bin with every built program byte-identical to the build's, and the
 * console device /dev/console. `onProgress(bytesDone, bytesTotal)` follows the program bytes.
 */
export async function installSystem(
  fs: FileSystem, programs: BuiltProgram[], onProgress?: (done: number, total: number) => void,
): Promise<InstallResult> {
  const sf = await fs.statfs();
  for (const p of programs) {
    if (p.bytes.length > sf.maxFileSize) {
      throw new ImageError(`program ${p.name} (${formatSize(p.bytes.length)}) is larger than the ${sf.variant} variant's maximum file size (${formatSize(sf.maxFileSize)})`);
    }
  }
  let newInodes = 0;
  for (const dir of ['/bin', '/dev']) if (await ensureDir(fs, dir)) newInodes++;
  let madeConsole = false;
  if (!(await hasConsole(fs))) {
    await fs.mknod('/dev/console', DEV_CONSOLE, 0);
    madeConsole = true;
    newInodes++;
  }
  const total = programs.reduce((s, p) => s + p.bytes.length, 0);
  let done = 0;
  const written: string[] = [];
  for (const p of programs) {
    const path = `/bin/${p.name}`;
    const have = await compareFile(fs, path, p.bytes);
    if (have !== 'same') {
      try {
        await fs.writeFile(path, p.bytes);
      } catch (e) {
        throw e instanceof FsError && e.code === 'ENOSPC'
          ? new ImageError(`image full while installing ${path} (${formatSize(p.bytes.length)})`)
          : e;
      }
      written.push(p.name);
      if (have === 'missing') newInodes++;
    }
    done += p.bytes.length;
    onProgress?.(done, total);
  }
  return { written, madeConsole, newInodes };
}

/** The files a new default image starts with besides /bin and /dev: a guide and samples. */
export function sampleFiles(programNames: string[]): Array<{ path: string; text: string }> {
  const readme = `Welcome to rv6 on RedLeaf.ts.

rv6 is a small Unix after xv6. Every program you run is its own isolation
domain, loaded from a signed artifact in /bin; the file system, the disk
driver and the rv6 core are domains too. A crash in one of them is contained.

Programs in /bin:
${wrap(programNames.join(' '), 72, '  ')}

Try:
  ls                        the files here: name, type, inode, size
  cat README | wc           lines, words and bytes of this file
  grep -n domain README     the lines of this file that mention domains
  echo hi > note; cat note  write a file and read it back
  sleep 100                 then Ctrl-C interrupts it
  sleep 5 & ps              a background job, and the process table
  domains                   every kernel domain: calls, faults, restarts
  crash nvme                crash the disk driver: its shadow restarts it
                            and the shell carries on (see: domains)
  exit 3                    leave: redleaf exits with status 3
`;
  const numbers = Array.from({ length: 100 }, (_, i) => `${i + 1}\n`).join('');
  const fruit = ['banana', 'apple', 'cherry', 'apple', 'date', 'elderberry', 'fig', 'banana', 'grape', 'apple'].join('\n') + '\n';
  return [
    { path: '/README', text: readme },
    { path: '/numbers.txt', text: numbers },
    { path: '/fruit.txt', text: fruit },
  ];
}

function wrap(words: string, width: number, indent: string): string {
  const lines: string[] = [];
  let cur = '';
  for (const w of words.split(' ')) {
    if (cur !== '' && indent.length + cur.length + 1 + w.length > width) {
      lines.push(indent + cur);
      cur = w;
    } else cur = cur === '' ? w : `${cur} ${w}`;
  }
  if (cur !== '') lines.push(indent + cur);
  return lines.join('\n');
}

/**
 * Create the default image at `path` (parent directories included): an xv6-variant file system
 * with the programs, /dev/console, /README and sample files.
 */
export async function createDefaultImage(path: string, onProgress?: (done: number, total: number) => void): Promise<void> {
  const programs = builtPrograms();
  nfs.mkdirSync(npath.dirname(path), { recursive: true });
  await replaceFile(path, async (tmp) => {
    mkfs(tmp, { sizeBytes: DEFAULT_IMAGE.sizeBytes, variant: DEFAULT_IMAGE.variant, inodes: DEFAULT_IMAGE.inodes });
    await withImageFs(tmp, 'boot', async (fs) => {
      await installSystem(fs, programs, onProgress);
      const enc = new TextEncoder();
      for (const f of sampleFiles(programs.map((p) => p.name))) await fs.writeFile(f.path, enc.encode(f.text));
    }, { deferFlushes: true });
  });
}

export interface PreparedImage {
  path: string;
  /** The image did not exist and was created. */
  created: boolean;
  /** Programs (re)installed into an existing image because they differed from the build's. */
  refreshed: string[];
  /** With `inMemory`: the image as booted (programs installed), the file left as it was. */
  bytes?: Uint8Array;
  /** With `readOnly`: what was not brought up to date (nothing is installed). */
  drift?: SystemDrift;
}

/** The notice of a `boot --read-only` on an image whose system is not the build's, or null. */
function driftNotice(path: string, d: SystemDrift): string | null {
  const parts: string[] = [];
  if (d.missing.length > 0) parts.push(`${d.missing.length} missing (${d.missing.join(' ')}: "command not found")`);
  if (d.stale.length > 0) {
    parts.push(`${d.stale.length} differing from the build (${d.stale.join(' ')}: the image's own copies run if this build's key signed them for the same interface, else exec refuses them)`);
  }
  if (parts.length === 0) return null;
  return `${path}: --read-only installs nothing, and the image's /bin is not the build's: programs ${parts.join('; ')}; boot once without --read-only (or use --membdev) to bring them up to date`;
}

/**
 * The image to boot: `disk` if given (it must exist), else the default image (created when
 * missing); in both cases with its programs brought up to date with the build. `notice` gets
 * one-line messages about what was done. An existing image fsck finds damaged is refused unless
 * `check` is false (boot --no-check): booting writes to it. With `readOnly` (boot --read-only)
 * the image is only read: nothing is installed or created, and `notice` says what is out of date.
 */
export async function prepareBootImage(disk: string | undefined, notice: (line: string) => void, o: { check: boolean; inMemory?: boolean; readOnly?: boolean } = { check: true }): Promise<PreparedImage> {
  if (disk === '') throw new ImageError('boot: --disk was given an empty path; name an image file (or leave --disk out to use the default image)');
  const path = disk ?? defaultImagePath();
  if (!nfs.existsSync(path)) {
    if (disk !== undefined) {
      throw new ImageError(`boot: disk image ${disk} does not exist (make one with: redleaf mkfs ${disk} --programs, or boot without --disk to use the default image)`);
    }
    if (o.readOnly) throw new ImageError(`boot --read-only: the default image ${path} does not exist, and --read-only creates nothing (boot once without it to create the image)`);
    notice(`creating the default rv6 image ${path} (${DEFAULT_IMAGE.variant} variant, ${formatSize(DEFAULT_IMAGE.sizeBytes)}) ...`);
    try {
      await createDefaultImage(path);
    } catch (e) {
      // The host's error alone ("EEXIST: file already exists, mkdir '.redleaf'") said neither what
      // was in the way nor what to do. Its temporary file's name is not said (the image's is).
      const err = e as NodeJS.ErrnoException;
      if (err.code === undefined) throw e;
      const why = hostReason(e, { EEXIST: 'exists and is not a directory' });
      const where = err.syscall === 'mkdir' && err.path !== undefined ? `directory ${err.path}: ` : '';
      throw new ImageError(`boot: cannot create the default image ${path}: ${where}${why} (set REDLEAF_IMAGE to an image path you may write, or boot --disk IMAGE)`);
    }
    return { path, created: true, refreshed: [] };
  }
  const programs = builtPrograms();
  if (o.readOnly) {
    // Nothing is written, so a damaged image is not refused (as cp out and inspect do not).
    const drift = await withImageFs(path, 'boot', (fs) => systemDrift(fs, programs), { readOnly: true });
    if (drift.noConsole) {
      // Booted, init could not open a console (nor make one): the session would end at once,
      // exit status 1 and no word why.
      throw new ImageError(`boot --read-only: ${path} has no console device /dev/console, which --read-only does not make, and without it init has no console and the session ends at once; boot once without --read-only to make it (or use --membdev, which makes it in memory)`);
    }
    const line = driftNotice(path, drift);
    if (line !== null) notice(line);
    return { path, created: false, refreshed: [], drift };
  }
  let r: InstallResult;
  let bytes: Uint8Array | undefined;
  if (o.inMemory) ({ result: r, bytes } = await withImageCopy(path, 'boot', (fs) => installSystem(fs, programs), { refuseDamaged: o.check }));
  else {
    r = await withImageFs(path, 'boot', (fs) => installSystem(fs, programs), {
      deferFlushes: true, refuseDamaged: o.check, unwritableHint: `boot it without writing to it: --read-only (or --membdev, in memory, changes not kept)`,
    });
  }
  const where = o.inMemory ? `${path} (its copy in memory)` : path;
  if (r.written.length > 0) {
    notice(`${where}: installed ${r.written.length} program${r.written.length === 1 ? '' : 's'} in /bin that differed from the build: ${r.written.join(' ')}`);
  }
  if (r.madeConsole) notice(`${where}: made the console device /dev/console`);
  return { path, created: false, refreshed: r.written, ...(bytes !== undefined ? { bytes } : {}) };
}
