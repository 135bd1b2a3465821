/**
 * benchfs [-s SIZE] [-n FILES] [DIR]: a file-system benchmark through the rv6 system calls.
 *
 *  1. sequential write: SIZE bytes (default 64M; suffixes K, M, G are powers of 1024) to
 *     DIR/benchfs.dat in 4 KiB writes, each lending the same exchange-heap buffer (no copy);
 *  2. sequential read of it back in 4 KiB reads (moving one IoBuf in and out; bytes not copied);
 *  3. create FILES (default 1000) files of 128 bytes in DIR/benchfs.d;
 *  4. delete them; then everything benchfs made is removed.
 * Prints one JSON line on stdout, {"seqwrite_mbps", "seqread_mbps", "create_per_s",
 * "delete_per_s"} (MiB/s and operations/s, timed with sys.now()), and readable lines on stderr.
 * SIZE beyond the file system's largest file fails with `File too large` (the xv6 variant's limit
 * is 268 KiB; the large variant's is far beyond).
 */
import { ERRNO, O_CREATE, O_RDONLY, O_TRUNC, O_WRONLY, type IoBuf, type Program } from '../../interfaces/rv6.js';
import { getopt, joinPath, program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef, RRefArray } from '../../runtime/types.js';

const USAGE = 'benchfs [-s SIZE] [-n FILES] [DIR]';
const BLOCK = 4096;
const SMALL_FILE = 128;
const MIB = 1 << 20;

/** `64M`, `4K`, `1G`, `123`: bytes (K/M/G are powers of 1024), or null. */
function parseSize(s: string): number | null {
  const m = /^([0-9]+)([KMG]?)$/i.exec(s);
  if (m === null) return null;
  const scale = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * scale;
}

/** A failed step: what was being done, and the -errno. */
class Failure {
  constructor(readonly what: string, readonly err: number) {}
}

export function init(sys: Sys): Program {
  return program(sys, 'benchfs', async (u) => {
    const o = getopt(u.args.slice(1), 's:n:');
    if (typeof o === 'string') return u.usage(USAGE, o);
    const size = parseSize(String(o.opts.get('s') ?? '64M'));
    if (size === null || size === 0) return u.usage(USAGE, `bad size '${String(o.opts.get('s'))}'`);
    const nfilesArg = String(o.opts.get('n') ?? '1000');
    if (!/^[0-9]+$/.test(nfilesArg) || Number(nfilesArg) === 0) return u.usage(USAGE, `bad number of files '${nfilesArg}'`);
    if (o.operands.length > 1) return u.usage(USAGE);
    const dir = o.operands[0] ?? '.';
    const blocks = Math.ceil(size / BLOCK);

    const bench = new Bench(u, dir);
    try {
      const bytes = blocks * BLOCK;
      const tw = await bench.seqWrite(blocks);
      const tr = await bench.seqRead(bytes);
      const nfiles = Number(nfilesArg);
      const tc = await bench.createSmall(nfiles);
      const td = await bench.deleteSmall(nfiles);
      const result = {
        seqwrite_mbps: round2(bytes / MIB / (tw / 1000)),
        seqread_mbps: round2(bytes / MIB / (tr / 1000)),
        create_per_s: Math.round(nfiles / (tc / 1000)),
        delete_per_s: Math.round(nfiles / (td / 1000)),
      };
      await u.eprint(
        `benchfs: sequential write ${bytes} bytes in ${BLOCK}-byte writes: ${tw.toFixed(1)} ms, ${result.seqwrite_mbps} MiB/s\n` +
          `benchfs: sequential read ${bytes} bytes in ${BLOCK}-byte reads: ${tr.toFixed(1)} ms, ${result.seqread_mbps} MiB/s\n` +
          `benchfs: create ${nfiles} files of ${SMALL_FILE} bytes: ${tc.toFixed(1)} ms, ${result.create_per_s}/s\n` +
          `benchfs: delete ${nfiles} files: ${td.toFixed(1)} ms, ${result.delete_per_s}/s\n`,
      );
      await u.print(JSON.stringify(result) + '\n');
      return 0;
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      return u.fail(e.what, e.err);
    } finally {
      await bench.cleanUp();
    }
  });
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The benchmark's steps; each fails by throwing a Failure, caught by the program. */
class Bench {
  readonly file: string;
  readonly smallDir: string;
  /** Small files [deleted, created) exist. */
  private created = 0;
  private deleted = 0;
  /** The block every write lends (its bytes never change). */
  private readonly buf: RRefArray<number>;
  /** The IoBuf every read moves in and gets back. */
  private io: RRef<IoBuf>;

  constructor(private readonly u: Ulib, dir: string) {
    this.file = joinPath(dir, 'benchfs.dat');
    this.smallDir = joinPath(dir, 'benchfs.d');
    this.buf = u.sys.alloc.bytes(BLOCK);
    this.buf.write(0, new TextEncoder().encode('benchfs '.repeat(BLOCK / 8)));
    this.io = u.sys.alloc.struct<IoBuf>('IoBuf');
    this.io.data = u.sys.alloc.bytes(BLOCK);
  }

  private check(what: string, r: number): number {
    if (r < 0) throw new Failure(what, r);
    return r;
  }

  private async open(path: string, flags: number): Promise<number> {
    return this.check(path, await this.u.rv6.open(path, flags));
  }

  /** Write `n` bytes of the buffer to fd in one call, or fail. */
  private async writeBlock(fd: number, n: number, path: string): Promise<void> {
    const w = await this.u.rv6.write(fd, this.buf, n);
    this.check(`write ${path}`, w);
    if (w !== n) throw new Failure(`write ${path} (short write: ${w} of ${n} bytes)`, -ERRNO.EIO);
  }

  /** Milliseconds to write `blocks` blocks (open to close). */
  async seqWrite(blocks: number): Promise<number> {
    const t0 = this.u.sys.now();
    const fd = await this.open(this.file, O_WRONLY | O_CREATE | O_TRUNC);
    try {
      for (let i = 0; i < blocks; i++) await this.writeBlock(fd, BLOCK, this.file);
    } finally {
      await this.u.rv6.close(fd);
    }
    return this.u.sys.now() - t0;
  }

  /** Milliseconds to read the file back (expecting `bytes`). */
  async seqRead(bytes: number): Promise<number> {
    const t0 = this.u.sys.now();
    const fd = await this.open(this.file, O_RDONLY);
    let got = 0;
    try {
      for (;;) {
        this.io.n = BLOCK;
        this.io = await this.u.rv6.read(fd, this.io);
        const n = this.check(`read ${this.file}`, this.io.n);
        if (n === 0) break;
        got += n;
      }
    } finally {
      await this.u.rv6.close(fd);
    }
    if (got !== bytes) throw new Failure(`read ${this.file} (${got} bytes back of ${bytes})`, -ERRNO.EIO);
    return this.u.sys.now() - t0;
  }

  private small(i: number): string {
    return joinPath(this.smallDir, `f${i}`);
  }

  /** Milliseconds to create `n` small files. */
  async createSmall(n: number): Promise<number> {
    this.check(this.smallDir, await this.u.rv6.mkdir(this.smallDir));
    const t0 = this.u.sys.now();
    for (let i = 0; i < n; i++) {
      const fd = await this.open(this.small(i), O_WRONLY | O_CREATE | O_TRUNC);
      this.created = i + 1;
      try {
        await this.writeBlock(fd, SMALL_FILE, this.small(i));
      } finally {
        await this.u.rv6.close(fd);
      }
    }
    return this.u.sys.now() - t0;
  }

  /** Milliseconds to delete the `n` small files. */
  async deleteSmall(n: number): Promise<number> {
    const t0 = this.u.sys.now();
    for (let i = 0; i < n; i++) {
      this.check(`unlink ${this.small(i)}`, await this.u.rv6.unlink(this.small(i)));
      this.deleted = i + 1;
    }
    return this.u.sys.now() - t0;
  }

  /** Remove whatever benchfs made (errors ignored: some of it may not exist) and free the buffers. */
  async cleanUp(): Promise<void> {
    for (let i = this.deleted; i < this.created; i++) await this.u.rv6.unlink(this.small(i));
    await this.u.rv6.rmdir(this.smallDir);
    await this.u.rv6.unlink(this.file);
    if (this.buf.valid) this.buf.drop();
    if (this.io.valid) this.io.drop();
  }
}
