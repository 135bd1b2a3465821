/**
 * `redleaf fsck IMAGE [--json]`: check an rv6 file-system image offline (src/host/fsck.ts) and
 * print a report: superblock summary, errors, warnings, usage statistics.
 *
 * Exit codes: 0 clean (warnings allowed), 1 damaged (errors found), 2 the image cannot be checked
 * at all (missing, unreadable, not an rv6 image) — with a message naming the problem.
 */
import * as nfs from 'node:fs';
import { Command } from 'commander';
import {
  decodeSuperblock, geometryOf, inodeBlocks, bitmapBlocks, LARGE, LARGE_MAGIC, XV6, XV6_MAGIC, hex, type Superblock, type Variant,
} from '../domains/fs/format.js';
import { HostBytes } from '../host/bytes.js';
import { fsck, type FsckResult } from '../host/fsck.js';
import { tooSmallForImage } from '../host/image.js';
import { formatSize } from './options.js';

export const EXIT_CLEAN = 0;
export const EXIT_DAMAGED = 1;
export const EXIT_UNREADABLE = 2;

/** Read the superblock header for the summary; null when no rv6 magic is found. */
function readSuperblock(image: string): { variant: Variant; sb: Superblock } | null {
  const fd = nfs.openSync(image, 'r');
  try {
    const buf = new Uint8Array(8192);
    const n = nfs.readSync(fd, buf, 0, buf.length, 0);
    const head = new HostBytes(buf);
    if (n >= XV6.sbOffset + 32 && head.getU32(XV6.sbOffset) === XV6_MAGIC) return { variant: 'xv6', sb: decodeSuperblock(XV6, head, XV6.sbOffset) };
    if (n >= LARGE.sbOffset + 48 && head.getU32(LARGE.sbOffset) === LARGE_MAGIC) return { variant: 'large', sb: decodeSuperblock(LARGE, head, LARGE.sbOffset) };
    return null;
  } finally {
    nfs.closeSync(fd);
  }
}

function unreadable(image: string, why: string): void {
  console.error(`fsck: ${image}: ${why}`);
  process.exitCode = EXIT_UNREADABLE;
}

export function register(program: Command): void {
  program
    .command('fsck')
    .description('check an rv6 file-system image: superblock, inodes, directories, link counts, bitmap; exit 0 clean, 1 damaged, 2 unreadable')
    .argument('<image>', 'image file to check')
    .option('--json', 'print the result as one JSON object', false)
    .action((image: string, o: { json: boolean }) => {
      let st: nfs.Stats;
      try {
        st = nfs.statSync(image);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        return unreadable(image, code === 'ENOENT' ? 'no such file' : (e as Error).message);
      }
      if (st.isDirectory()) return unreadable(image, 'is a directory, not an image file');
      if (!st.isFile() && !st.isBlockDevice()) return unreadable(image, 'not a regular file');
      // Its real size: fsck's own check sees only whole 512-byte blocks (a 1000-byte file as 512).
      const small = st.isFile() ? tooSmallForImage(st.size) : null;
      if (small !== null) return unreadable(image, small);
      let head: { variant: Variant; sb: Superblock } | null;
      let r: FsckResult;
      try {
        head = readSuperblock(image);
        r = fsck(image);
      } catch (e) {
        return unreadable(image, `cannot read: ${(e as Error).message}`);
      }
      if (!head || r.stats.variant === undefined) {
        const why = r.errors[0] ?? 'no rv6 superblock found';
        return unreadable(image, `not an rv6 file-system image (${why}; expected magic ${hex(XV6_MAGIC)} for xv6 or ${hex(LARGE_MAGIC)} for large)`);
      }
      process.exitCode = r.ok ? EXIT_CLEAN : EXIT_DAMAGED;
      if (o.json) {
        console.log(JSON.stringify({ image, ...r, superblock: head.sb }));
        return;
      }
      const g = geometryOf(head.variant);
      const sb = head.sb;
      const s = r.stats;
      const out: string[] = [];
      out.push(`fsck ${image}: ${head.variant} variant (magic ${hex(sb.magic)}), ${formatSize(st.size)} file`);
      out.push('superblock:');
      out.push(`  size ${sb.size} blocks of ${g.bsize} bytes (${formatSize(sb.size * g.bsize)}), ${sb.nblocks} data blocks`);
      out.push(`  log ${sb.nlog} blocks at ${sb.logstart}; ${sb.ninodes} inodes in ${inodeBlocks(g, sb.ninodes)} blocks at ${sb.inodestart}; ` +
        `bitmap ${bitmapBlocks(g, sb.size)} blocks at ${sb.bmapstart}`);
      if (s.blocks > 0) {
        out.push('usage:');
        out.push(`  inodes: ${s.usedInodes} of ${s.inodes} used (${s.files} files, ${s.dirs} directories, ${s.devices} devices)`);
        out.push(`  data blocks: ${s.usedBlocks} of ${s.dataBlocks} used, ${s.freeBlocks} free (${formatSize(s.freeBlocks * g.bsize)})`);
      }
      out.push(`errors: ${r.errors.length === 0 ? 'none' : ''}`);
      for (const m of r.errors) out.push(`  ${m}`);
      out.push(`warnings: ${r.warnings.length === 0 ? 'none' : ''}`);
      for (const m of r.warnings) out.push(`  ${m}`);
      out.push(r.ok ? `${image}: clean` : `${image}: DAMAGED (${r.errors.length} error${r.errors.length === 1 ? '' : 's'})`);
      console.log(out.map((l) => l.trimEnd()).join('\n'));
    });
}
