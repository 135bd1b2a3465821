/**
 * Loading a program file (xv6's exec.c): resolve the path, read the whole file through the fs
 * domain, decode it as UTF-8 and hand the text to the kernel's program loader, which verifies the
 * artifact (signature, content hash, interface fingerprint) and loads it as a new domain.
 *
 * Decisions:
 *  - a name without '/' is looked up in /bin (there is no PATH); a name with '/' is a path,
 *    relative to the caller's current directory unless it starts with '/';
 *  - a directory or a device is not executable (EACCES, as execve); a file the loader refuses (not
 *    an artifact, a bad or untrusted signature, not a Program) is ENOEXEC, and the loader's reason
 *    goes to the core's log; a file above MAX_PROGRAM_BYTES is ENOEXEC without being read.
 */
import { ERRNO, O_RDONLY, T_FILE, type IoBuf, type Program } from '../../interfaces/rv6.js';
import type { Ctx } from './ctx.js';
import type { DirRef } from './file.js';

export const MAX_PROGRAM_BYTES = 16 << 20;
const CHUNK = 64 << 10;

export interface Loaded {
  /** The kernel domain's name. */
  domain: string;
  program: Program;
  /** The program's name (the file's base name): the process name. */
  name: string;
}

export function programPath(path: string): string {
  return path.includes('/') ? path : `/bin/${path}`;
}

export function programName(path: string): string {
  const parts = programPath(path).split('/').filter((p) => p !== '');
  return parts[parts.length - 1] ?? '';
}

/** Load program file `path` (from directory `cwd`) as the domain `domain(name)`; or -errno. */
export async function loadProgram(ctx: Ctx, cwd: DirRef, path: string, domain: (name: string) => string): Promise<Loaded | number> {
  if (path === '') return -ERRNO.ENOENT;
  const full = programPath(path);
  const name = programName(path);
  if (name === '') return -ERRNO.EACCES; // "/" and the like: a directory
  let text = await readProgram(ctx, cwd, full);
  // EIO: the fs domain may have crashed under the read and been restarted (fsclient.ts), its
  // open file gone stale; reading a program has no effect to undo, so it is read once more.
  if (text === -ERRNO.EIO) text = await readProgram(ctx, cwd, full);
  if (typeof text === 'number') return text;
  const dname = domain(name);
  const r = await ctx.loader.load(text, dname);
  if (typeof r === 'string') {
    ctx.sys.log(`cannot run ${full}: ${r}`);
    return -ERRNO.ENOEXEC;
  }
  return { domain: dname, program: r, name };
}

async function readProgram(ctx: Ctx, cwd: DirRef, path: string): Promise<string | number> {
  const { fs } = ctx;
  const file = await fs.open(path, O_RDONLY, cwd);
  if (file < 0) return file;
  try {
    const t = await fs.typeOf(file);
    if (t.err < 0) return t.err;
    if (t.type !== T_FILE) return -ERRNO.EACCES;
    if (t.size > MAX_PROGRAM_BYTES) {
      ctx.sys.log(`cannot run ${path}: ${t.size} bytes, more than ${MAX_PROGRAM_BYTES}`);
      return -ERRNO.ENOEXEC;
    }
    return await readAll(ctx, file, t.size);
  } finally {
    await fs.close(file);
  }
}

async function readAll(ctx: Ctx, file: number, size: number): Promise<string | number> {
  const decoder = new TextDecoder('utf-8');
  const chunk = new Uint8Array(Math.min(CHUNK, Math.max(size, 1)));
  let io = ctx.sys.alloc.struct<IoBuf>('IoBuf');
  io.data = ctx.sys.alloc.bytes(chunk.length);
  let text = '';
  let off = 0;
  try {
    for (;;) {
      io.n = chunk.length;
      io.off = off;
      io = await ctx.fs.read(file, io);
      const n = io.n;
      if (n < 0) return n;
      if (n === 0) break;
      io.data!.read(0, chunk, 0, n);
      text += decoder.decode(chunk.subarray(0, n), { stream: true });
      off += n;
      if (off > MAX_PROGRAM_BYTES) return -ERRNO.ENOEXEC;
    }
    return text + decoder.decode();
  } finally {
    io.drop();
  }
}
