/**
 * `redleaf cp SRC DST`: copy one file between the host and an rv6 image. An image path is written
 * `IMAGE:/path/in/fs` (split at the first ":/"); the other side is a host path. As with cp(1), a
 * destination that is an existing directory receives the file under the source's base name.
 *
 * The image is mounted on the host (withImageFs: the fs's own code over the image file). Copying
 * into it replays a pending log; the destination is created or truncated, written in chunks, and
 * made durable (unmount = commit + fsync for the image, fsync for a host file). An image fsck
 * finds damaged is not written to (withImageFs's refuseDamaged), unless --no-check; one the user
 * may not write is refused with what to do. Copying out of an image mounts it read-only: it
 * reads the files as recovery would leave them and writes nothing to the image, so it works on
 * an image the user may only read.
 */
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { Command } from 'commander';
import { FsError, O_CREATE, O_RDONLY, O_TRUNC, O_WRONLY } from '../domains/fs/fs.js';
import { geometryOf, T_DIR } from '../domains/fs/format.js';
import { withImageFs } from '../host/image.js';
import { hostReason, replaceFile } from '../host/host-files.js';
import { fileBlocks } from '../host/mkfs.js';
import { parseImageRef, type ImageRef } from './options.js';

const CHUNK = 1 << 20;

class CpError extends Error {}

function fsMessage(where: string, e: unknown): Error {
  if (e instanceof FsError) {
    const hint: Partial<Record<string, string>> = {
      ENOENT: 'no such file or directory in the image',
      EISDIR: 'is a directory',
      ENOTDIR: 'a component of the path is not a directory',
      ENAMETOOLONG: 'name too long for this file-system variant',
      ENOSPC: 'image full',
      EFBIG: 'file too large for this file-system variant',
      EUCLEAN: 'the image is damaged (run redleaf fsck)',
    };
    return new CpError(`cp: ${where}: ${hint[e.code] ? `${hint[e.code]} (${e.message})` : e.message}`);
  }
  return new CpError(`cp: ${where}: ${(e as Error).message}`);
}

function baseName(p: string): string {
  return p.split('/').filter((x) => x !== '').pop() ?? '';
}

async function hostToImage(src: string, dst: ImageRef, check: boolean): Promise<string> {
  let st: nfs.Stats;
  try {
    st = nfs.statSync(src);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CpError(`cp: ${src}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
  }
  if (st.isDirectory()) throw new CpError(`cp: ${src} is a directory (cp copies one file; use redleaf mkfs --add for trees)`);
  if (!st.isFile()) throw new CpError(`cp: ${src} is not a regular file`);
  return withImageFs(dst.image, 'cp', async (fs) => {
    let path = dst.path;
    const where = (): string => `${dst.image}:${path}`;
    try {
      const isDir = path.endsWith('/') || (await fs.stat(path).then((s) => s.type === T_DIR, () => false));
      if (isDir) path = `${path.replace(/\/+$/, '')}/${npath.basename(src)}`;
    } catch (e) {
      throw fsMessage(where(), e);
    }
    const sf = await fs.statfs();
    if (st.size > sf.maxFileSize) {
      throw new CpError(`cp: ${src} (${st.size} bytes) is larger than the ${sf.variant} variant's maximum file size (${sf.maxFileSize} bytes)`);
    }
    // The blocks it needs, indirect ones included; an existing file's are freed first (O_TRUNC).
    const old = await fs.stat(path).then((s) => s, () => null);
    const g = geometryOf(sf.variant);
    const need = fileBlocks(g, st.size), freed = old === null ? 0 : fileBlocks(g, old.size);
    if (need > sf.freeBlocks + freed) {
      throw new CpError(`cp: ${where()}: image full: ${src} needs ${need} blocks of ${sf.bsize} bytes (its data and indirect blocks), ${sf.freeBlocks + freed} are free`);
    }
    const hfd = nfs.openSync(src, 'r');
    try {
      let f;
      try {
        f = await fs.open(path, O_WRONLY | O_CREATE | O_TRUNC);
      } catch (e) {
        throw fsMessage(where(), e);
      }
      let off = 0;
      try {
        const buf = new Uint8Array(CHUNK);
        for (;;) {
          const n = nfs.readSync(hfd, buf, 0, CHUNK, off);
          if (n <= 0) break;
          let w: number;
          try {
            w = await fs.write(f, off, buf, 0, n);
          } catch (e) {
            throw fsMessage(where(), e);
          }
          if (w !== n) throw new CpError(`cp: ${where()}: short write after ${off + w} bytes (image full or file too large)`);
          off += n;
        }
      } catch (e) {
        // No partial copy is left behind: a file this copy made is removed, one it overwrote is emptied.
        await fs.close(f);
        const left = await (old === null ? fs.unlink(path) : fs.truncate(path, 0)).then(
          () => (old === null ? 'the partial copy was removed' : `${where()} was left empty`),
          () => `the partial copy of ${off} bytes was left in ${where()}`,
        );
        throw new CpError(`${(e as Error).message}; ${left}`);
      }
      await fs.close(f);
      return `${src} -> ${where()} (${off} bytes)`;
    } finally {
      nfs.closeSync(hfd);
    }
  }, { refuseDamaged: check });
}

/**
 * Write the host file `target` with `fill(fd)`, returning what fill does. A regular file, new or
 * existing, is made whole or not at all (replaceFile: a copy that fails part-way, reading a
 * damaged image, leaves no partial file and an existing one as it was), with an existing file's
 * mode, made durable; a symbolic link's file is replaced, not the link. Anything else (a device,
 * a FIFO) is written in place and not fsynced (fsync of /dev/null is EINVAL).
 */
async function writeHostFile(target: string, fill: (fd: number) => Promise<number>): Promise<number> {
  const fail = (e: unknown): never => {
    throw new CpError(`cp: ${target}: ${hostReason(e, { ENOENT: 'directory does not exist' })}`);
  };
  const st = nfs.statSync(target, { throwIfNoEntry: false });
  if (st?.isDirectory()) fail({ code: 'EISDIR' });
  const open = (path: string, flags: string): number => {
    try {
      return nfs.openSync(path, flags, st?.mode);
    } catch (e) {
      return fail(e);
    }
  };
  /** fill(fd), then, for a file that replaces `target`, made durable with the old one's mode (not the umask's). */
  const written = async (fd: number, replacing: boolean): Promise<number> => {
    try {
      const n = await fill(fd);
      if (replacing) {
        nfs.fsyncSync(fd);
        if (st !== undefined) nfs.fchmodSync(fd, st.mode);
      }
      return n;
    } finally {
      nfs.closeSync(fd);
    }
  };
  if (st !== undefined && !st.isFile()) return written(open(target, 'w'), false);
  let path = target;
  try {
    if (st !== undefined) {
      nfs.accessSync(target, nfs.constants.W_OK);
      path = nfs.realpathSync(target);
    }
  } catch (e) {
    fail(e);
  }
  return replaceFile(path, (tmp) => written(open(tmp, 'wx'), true));
}

async function imageToHost(src: ImageRef, dst: string): Promise<string> {
  let target = dst;
  try {
    if (dst.endsWith('/') || nfs.statSync(dst).isDirectory()) target = npath.join(dst, baseName(src.path));
  } catch { /* does not exist: a new file */ }
  return withImageFs(src.image, 'cp', async (fs) => {
    const where = `${src.image}:${src.path}`;
    let f;
    try {
      f = await fs.open(src.path, O_RDONLY);
      if ((await fs.fstat(f)).type === T_DIR) throw new FsError('EISDIR', `'${src.path}' is a directory`);
    } catch (e) {
      if (f) await fs.close(f);
      throw fsMessage(where, e);
    }
    try {
      const size = (await fs.fstat(f)).size;
      const copied = await writeHostFile(target, async (fd) => {
        const buf = new Uint8Array(CHUNK);
        let off = 0;
        while (off < size) {
          let n: number;
          try {
            n = await fs.read(f, off, buf, 0, Math.min(CHUNK, size - off));
          } catch (e) {
            throw fsMessage(where, e);
          }
          if (n <= 0) throw new CpError(`cp: ${where}: unexpected end of file at ${off} of ${size} bytes`);
          let d = 0;
          while (d < n) d += nfs.writeSync(fd, buf, d, n - d);
          off += n;
        }
        return off;
      });
      return `${where} -> ${target} (${copied} bytes)`;
    } finally {
      await fs.close(f);
    }
  }, { readOnly: true });
}

export function register(program: Command): void {
  program
    .command('cp')
    .description('copy a file between the host and an rv6 image; write image paths as IMAGE:/path/in/fs')
    .argument('<src>', 'source: a host file or IMAGE:/path')
    .argument('<dst>', 'destination: a host path or IMAGE:/path (created or truncated; a directory receives the source\'s name)')
    .option('-q, --quiet', 'print nothing on success', false)
    .option('--no-check', 'write into the image even if fsck finds it damaged (by default such an image is refused)')
    .addHelpText('after', '\nExamples:\n  redleaf cp notes.txt disk.img:/notes.txt\n  redleaf cp disk.img:/README ./README\n')
    .action(async (src: string, dst: string, o: { quiet: boolean; check: boolean }) => {
      const s = parseImageRef(src), d = parseImageRef(dst);
      if (s && d) throw new Error('cp: both SRC and DST are image paths; copy through a host file');
      if (!s && !d) {
        // `disk.img:` is a host name ending in ':' to us; its writer most likely meant the image's root.
        const bare = [src, dst].find((a) => a.endsWith(':') && nfs.existsSync(a.slice(0, -1)));
        const hint = bare === undefined ? '' : ` (for the image's root directory, write ${bare}/)`;
        throw new Error(`cp: neither SRC nor DST is an image path; write one as IMAGE:/path (e.g. disk.img:/notes.txt)${hint}`);
      }
      const msg = d ? await hostToImage(src, d, o.check) : await imageToHost(s!, dst);
      if (!o.quiet) console.log(msg);
    });
}
