/**
 * `redleaf mkfs IMAGE [--size 64M] [--variant xv6|large] [--inodes N] [--add PATH ...] [--programs]
 * [--force]`: make an rv6 file-system image on the host (src/host/mkfs.ts), optionally filled with
 * host files and made bootable (the built user programs in /bin and /dev/console, through
 * src/host/image.ts), and print a summary.
 *
 * Invariants: every argument is checked before the image file is touched, so a bad size, a
 * missing --add path, an image that cannot be written or an existing image without --force
 * leaves the disk as it was; an image this command started writing and could not finish is
 * removed (and one it had not opened yet, such as an existing image when an --add file turns
 * out too large, is not).
 */
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { geometryOf, type Variant } from '../domains/fs/format.js';
import { mkfs, mkfsParams } from '../host/mkfs.js';
import { builtPrograms, installSystem, withImageFs, type BuiltProgram } from '../host/image.js';
import { formatSize, numberOption, sizeOption } from './options.js';

/** Largest image of a variant: the superblock's size field and block numbers are u32. */
export function maxImageBytes(variant: Variant): number {
  return 0xffffffff * geometryOf(variant).bsize;
}

/** Smallest image (in blocks) mkfs accepts for `variant` with `inodes` inodes. */
export function minImageBlocks(variant: Variant, inodes?: number): number {
  const g = geometryOf(variant);
  // Metadata regions grow slowly with the size; walk up from a lower bound (a few iterations).
  let size = 4;
  for (let i = 0; i < 10_000; i++) {
    try {
      mkfsParams(g, size, inodes);
      return size;
    } catch (e) {
      const m = /for (\d+) metadata blocks/.exec((e as Error).message);
      size = m ? Math.max(size + 1, Number(m[1]) + 1) : size + 1;
    }
  }
  return size;
}

interface MkfsCliOptions {
  size: number;
  variant: Variant;
  inodes?: number;
  add?: string[];
  force: boolean;
  progress: boolean;
  programs: boolean;
}

function checkArgs(image: string, o: MkfsCliOptions): { blocks: number } {
  const g = geometryOf(o.variant);
  const bs = g.bsize;
  const max = maxImageBytes(o.variant);
  if (o.size > max) {
    throw new Error(
      `mkfs: size ${formatSize(o.size)} too large for the ${o.variant} variant: its format limits an image to 2^32-1 blocks of ${bs} bytes ` +
      `(${formatSize(max)})${o.variant === 'xv6' ? '; use --variant large for bigger images' : ''}`,
    );
  }
  if (o.size % bs !== 0) throw new Error(`mkfs: size ${o.size} bytes is not a multiple of the ${o.variant} block size (${bs} bytes)`);
  const blocks = o.size / bs;
  if (o.inodes !== undefined) {
    if (o.inodes - 1 > g.maxInum) {
      throw new Error(`mkfs: --inodes ${o.inodes} too many for the ${o.variant} variant: directory entries hold inode numbers up to ${g.maxInum}`);
    }
  }
  const min = minImageBlocks(o.variant, o.inodes);
  if (blocks < min) {
    throw new Error(
      `mkfs: size ${formatSize(o.size)} too small for the ${o.variant} variant${o.inodes !== undefined ? ` with ${o.inodes} inodes` : ''}: ` +
      `at least ${min} blocks of ${bs} bytes (${formatSize(min * bs)}) are needed`,
    );
  }
  for (const p of o.add ?? []) {
    let st: nfs.Stats;
    try {
      st = nfs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Error(code === 'ENOENT' ? `mkfs: --add ${p}: no such file or directory` : `mkfs: --add ${p}: ${(e as Error).message}`);
    }
    if (!st.isDirectory() && !st.isFile()) throw new Error(`mkfs: --add ${p}: neither a file nor a directory`);
  }
  let st: nfs.Stats | undefined;
  try {
    st = nfs.statSync(image);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) throw new Error(`mkfs: ${image} is a directory`);
  if (st && !o.force) throw new Error(`mkfs: ${image} already exists; use --force to overwrite it`);
  if (st && !st.isFile()) throw new Error(`mkfs: ${image} is not a regular file; refusing to overwrite it`);
  const dir = npath.dirname(npath.resolve(image));
  if (!nfs.existsSync(dir)) throw new Error(`mkfs: directory ${dir} does not exist`);
  const target = st ? image : dir;
  try {
    nfs.accessSync(target, nfs.constants.W_OK);
  } catch (e) {
    throw new Error(`mkfs: ${st ? image : `directory ${dir}`} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return { blocks };
}

/** What identifies a file's state: an image whose state has not changed was not touched. */
function fileState(path: string): string | null {
  const st = nfs.statSync(path, { bigint: true, throwIfNoEntry: false });
  return st === undefined ? null : `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

export function register(program: Command): void {
  program
    .command('mkfs')
    .description('make an rv6 file-system image (xv6-compatible or large variant), optionally filled with host files')
    .argument('<image>', 'image file to create')
    // The default shown as it is written (Commander would print 67108864).
    .addOption(new Option('--size <size>', 'image size, e.g. 64M, 1G, 16G (K/M/G/T are binary)').argParser(sizeOption('--size')).default(64 * 2 ** 20, '64M'))
    .addOption(
      new Option('--variant <variant>', 'format: xv6 (1 KiB blocks, xv6-riscv compatible, max ~4 TiB) or large (4 KiB blocks, max ~16 TiB)')
        .choices(['xv6', 'large'])
        .default('large'),
    )
    .option('--inodes <n>', 'number of inodes, at least 2: inode 0 is unused, 1 is the root (default: 200 for xv6, size/16 blocks for large)', numberOption('--inodes', 2, Infinity))
    .option('--add <paths...>', 'host files or directories to copy in (a directory\'s contents go into the root)')
    .option('--programs', 'make the image bootable: install the built user programs in /bin and make /dev/console', false)
    .option('--force', 'overwrite IMAGE if it exists', false)
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', '\nExamples:\n  redleaf mkfs disk.img --size 1G\n  redleaf mkfs boot.img --programs      # then: redleaf boot --disk boot.img\n  redleaf mkfs xv6.img --variant xv6 --size 2M --add ./userfiles\n')
    .action(async (image: string, o: MkfsCliOptions) => {
      const { blocks } = checkArgs(image, o);
      const programs: BuiltProgram[] = o.programs ? builtPrograms() : [];
      const programBytes = programs.reduce((s, p) => s + p.bytes.length, 0);
      const g = geometryOf(o.variant);
      let bar: SingleBar | null = null;
      // One bar over both phases: the --add files (mkfs), then the programs.
      const onProgress = o.progress && process.stderr.isTTY
        ? (done: number, total: number): void => {
          if (total <= 0) return;
          if (!bar) {
            bar = new SingleBar({ format: 'mkfs [{bar}] {percentage}% {value}/{total} bytes', stream: process.stderr }, Presets.shades_classic);
            bar.start(total, 0);
          }
          bar.setTotal(total);
          bar.update(done);
        }
        : undefined;
      let r;
      let addBytes = 0;
      let installed: { newInodes: number; freeBlocks: number } | null = null;
      const before = fileState(image);
      try {
        r = mkfs(image, {
          blocks, variant: o.variant, inodes: o.inodes, addDirs: o.add,
          onProgress: onProgress && ((done, total) => {
            addBytes = total;
            onProgress(done, total + programBytes);
          }),
        });
        if (o.programs) {
          installed = await withImageFs(image, 'mkfs', async (fs) => ({
            ...(await installSystem(fs, programs, onProgress && ((done) => onProgress(addBytes + done, addBytes + programBytes)))),
            freeBlocks: (await fs.statfs()).freeBlocks,
          }), { deferFlushes: true });
        }
      } catch (e) {
        // Remove what this command wrote, not an image it failed before opening.
        const now = fileState(image);
        if (now !== null && now !== before) {
          try {
            nfs.rmSync(image, { force: true });
          } catch { /* best effort */ }
        }
        throw e;
      } finally {
        (bar as SingleBar | null)?.stop();
      }
      const dataBlocks = r.size - r.datastart;
      const usedData = installed ? dataBlocks - installed.freeBlocks : r.usedBlocks - r.datastart;
      console.log(`made ${image}: ${r.variant} variant, ${formatSize(r.size * r.bsize)} (${r.size} blocks of ${r.bsize} bytes)`);
      console.log(`  inodes:      ${r.ninodes} (${r.usedInodes + (installed?.newInodes ?? 0)} used)`);
      console.log(`  log:         ${r.nlog} blocks`);
      console.log(`  data blocks: ${dataBlocks} from block ${r.datastart} (${usedData} used, ${formatSize((dataBlocks - usedData) * r.bsize)} free)`);
      console.log(`  max file:    ${formatSize(g.maxFileSize)}, names up to ${g.dirsiz} bytes`);
      if (o.programs) console.log(`  programs:    ${programs.length} in /bin (${formatSize(programBytes)}), /dev/console`);
    });
}
