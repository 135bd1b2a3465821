/**
 * The user library (xv6's ulib + printf): what every rv6 user program builds on. A `Ulib` wraps
 * the process's Rv6 object and its domain's `sys`.
 *
 *  - output: `print`/`eprint` append to per-stream staging arrays (TextEncoder.encodeInto, so no
 *    per-byte typed-array stores) and are flushed through ONE reusable exchange-heap buffer that
 *    `write` borrows; `eprint` flushes stdout first so the two streams stay in order;
 *  - input: ONE reusable IoBuf, moved into `read`/`getdents` and moved back; `read` copies the
 *    bytes out with one bulk `DmaBytes.read` into a private staging array;
 *  - errors are values: negative errnos; `warn`/`fail` print `prog: subject: message`.
 *
 * Invariant: the two exchange-heap buffers are used by one system call at a time (`exclusive`),
 * so concurrent tasks of one program (the shell's background jobs) never touch a buffer that is
 * lent to or moved into a call in progress, which would be an ownership violation (a panic).
 */
import {
  DEV_CONSOLE, ERRNO, T_DEVICE, T_DIR, T_FILE, type IoBuf, type Program, type Rv6, type StatBuf,
} from '../../interfaces/rv6.js';
import type { Sys } from '../sys.js';
import type { RRef, RRefArray } from '../types.js';
import { getopt, splitArgv } from './args.js';
import { strerror } from './errno.js';
import { basename, joinPath, parseDirents, type Dirent } from './paths.js';

/** Size of the exchange-heap buffers and of one read/write system call. */
export const BUFSZ = 4096;

/** Exit status of a program whose output pipe has no reader any more (Unix: 128 + SIGPIPE). */
export const STATUS_BROKEN_PIPE = 141;

/** stat/fstat as a plain value (the StatBuf RRef is dropped). */
export interface Stat {
  type: number;
  nlink: number;
  dev: number;
  ino: number;
  size: number;
  major: number;
  minor: number;
}

export interface ChildStatus {
  /** The reaped child's pid, or -errno. */
  pid: number;
  status: number;
}

/** Outcome of copyFd: bytes copied, and the first error with the side it happened on. */
export interface CopyResult {
  bytes: number;
  err: number;
  side: 'read' | 'write' | null;
}

/** One line (without its '\n'; the last one may lack it), null at end of file, or -errno. */
export type LineResult = string | null | number;

/** Buffered text for one output fd. */
class OutStream {
  readonly staging = new Uint8Array(BUFSZ);
  count = 0;
  /** 0, or the -errno of the first failed write (later output is discarded). */
  err = 0;
  constructor(readonly fd: number) {}
}

/** Decoded input of one fd not yet returned by readLine. */
class LineBuffer {
  readonly decoder = new TextDecoder('utf-8');
  pending = '';
  eof = false;
}

const encoder = new TextEncoder();

export class Ulib {
  /** The arguments, argv[0] first. */
  readonly args: string[];
  private readonly out = new OutStream(1);
  private readonly errOut = new OutStream(2);
  /** The exchange-heap buffer `write` borrows. */
  private readonly xbuf: RRefArray<number>;
  /** The IoBuf moved into read/getdents (always moved back: reassigned after each call). */
  private io: RRef<IoBuf>;
  /** Where `read` copies the bytes of the IoBuf (a view of it is returned to the caller). */
  private readonly inStaging = new Uint8Array(BUFSZ);
  private readonly lineBuffers = new Map<number, LineBuffer>();
  private lock: Promise<unknown> = Promise.resolve();

  constructor(readonly sys: Sys, readonly rv6: Rv6, readonly name: string, argv: string) {
    this.args = splitArgv(argv);
    this.xbuf = sys.alloc.bytes(BUFSZ);
    this.io = sys.alloc.struct<IoBuf>('IoBuf');
    this.io.data = sys.alloc.bytes(BUFSZ);
  }

  // ---- output ------------------------------------------------------------------------------------

  /** Append `text` to stdout (written when the buffer fills, on flush, and at exit). */
  print(text: string): Promise<void> {
    return this.append(this.out, text);
  }

  /** Write `text` to stderr now (after flushing stdout). */
  async eprint(text: string): Promise<void> {
    await this.append(this.errOut, text);
    await this.flush();
  }

  /** Print a block of lines (a table a system call returned), ending it with a newline if it lacks one. */
  printTable(text: string): Promise<void> {
    return this.print(text === '' || text.endsWith('\n') ? text : text + '\n');
  }

  /** Write out everything printed so far (stdout, then stderr). */
  async flush(): Promise<void> {
    await this.drain(this.out);
    await this.drain(this.errOut);
  }

  /** 0, or the -errno with which writing stdout failed (a program may stop producing output). */
  get outputError(): number {
    return this.out.err;
  }

  /** Write all of `data` to `fd` (unbuffered); 0 or -errno. */
  async writeAll(fd: number, data: string | Uint8Array): Promise<number> {
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    for (let off = 0; off < bytes.length; off += BUFSZ) {
      const n = Math.min(BUFSZ, bytes.length - off);
      const r = await this.exclusive(() => {
        this.xbuf.write(0, bytes, off, n);
        return this.writeBuffer(fd, n);
      });
      if (r < 0) return r;
    }
    return 0;
  }

  private async append(s: OutStream, text: string): Promise<void> {
    let rest = text;
    for (;;) {
      const { read, written } = encoder.encodeInto(rest, s.staging.subarray(s.count));
      s.count += written ?? 0;
      if (read === rest.length) return;
      rest = rest.slice(read);
      await this.drain(s);
    }
  }

  private drain(s: OutStream): Promise<void> {
    return this.exclusive(async () => {
      const n = s.count;
      // Taken synchronously on entry: text printed while the write is in flight starts afresh.
      s.count = 0;
      if (n === 0 || s.err !== 0) return;
      this.xbuf.write(0, s.staging, 0, n);
      const r = await this.writeBuffer(s.fd, n);
      if (r < 0) s.err = r;
    });
  }

  /** Write the first `n` bytes of xbuf, retrying after a short write; 0 or -errno. Holds the lock. */
  private async writeBuffer(fd: number, n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const w = await this.rv6.write(fd, this.xbuf, left);
      if (w < 0) return w;
      if (w === 0) return -ERRNO.EIO; // no progress: never loop forever
      if (w < left) this.xbuf.copyFrom(this.xbuf, w, 0, left - w); // copyWithin: overlap is fine
      left -= w;
    }
    return 0;
  }

  // ---- input -------------------------------------------------------------------------------------

  /**
   * Read up to `max` bytes (at most BUFSZ) from `fd`: a view of the bytes (empty at end of file),
   * valid until the next read of this Ulib, or -errno. Flushes stdout first (as C stdio does), so
   * a prompt is on the screen before a read of the console blocks.
   */
  async read(fd: number, max = BUFSZ): Promise<Uint8Array | number> {
    await this.flush();
    return this.exclusive(async () => {
      const io = this.io;
      io.n = Math.min(max, BUFSZ);
      io.off = 0;
      this.io = await this.rv6.read(fd, io);
      const n = this.io.n;
      if (n <= 0) return n < 0 ? n : this.inStaging.subarray(0, 0);
      const data = this.io.data;
      if (data === null || n > data.byteLength) return -ERRNO.EIO;
      data.read(0, this.inStaging, 0, n);
      return this.inStaging.subarray(0, n);
    });
  }

  /** Everything left in `fd`, decoded as UTF-8, or -errno. */
  async readAll(fd: number): Promise<string | number> {
    const decoder = new TextDecoder('utf-8');
    let text = '';
    for (;;) {
      const r = await this.read(fd);
      if (typeof r === 'number') return r;
      if (r.length === 0) return text + decoder.decode();
      text += decoder.decode(r, { stream: true });
    }
  }

  /**
   * The next line of `fd`. `chunk` bounds each read: 1 reads byte by byte, so that nothing past
   * the line is consumed (the shell reading commands from a pipe it shares with its children).
   */
  async readLine(fd: number, chunk = BUFSZ): Promise<LineResult> {
    let b = this.lineBuffers.get(fd);
    if (b === undefined) {
      b = new LineBuffer();
      this.lineBuffers.set(fd, b);
    }
    for (;;) {
      const nl = b.pending.indexOf('\n');
      if (nl >= 0) {
        const line = b.pending.slice(0, nl);
        b.pending = b.pending.slice(nl + 1);
        return line;
      }
      if (b.eof) {
        // A later read may deliver more (the console after Ctrl-D): end of file is reported once.
        b.eof = false;
        if (b.pending === '') return null;
        const last = b.pending;
        b.pending = '';
        return last;
      }
      const r = await this.read(fd, chunk);
      if (typeof r === 'number') return r;
      if (r.length === 0) {
        b.pending += b.decoder.decode();
        b.eof = true;
      } else {
        b.pending += b.decoder.decode(r, { stream: true });
      }
    }
  }

  /**
   * Copy `src` to `dst` until end of file, with no copy in this domain: the IoBuf's data is lent
   * straight to `write`. Flushes stdout first, so the bytes land after what was printed.
   */
  async copyFd(src: number, dst: number): Promise<CopyResult> {
    await this.flush();
    let bytes = 0;
    for (;;) {
      const r = await this.exclusive(async (): Promise<CopyResult | number> => {
        const io = this.io;
        io.n = BUFSZ;
        io.off = 0;
        this.io = await this.rv6.read(src, io);
        const n = this.io.n;
        if (n < 0) return { bytes, err: n, side: 'read' };
        if (n === 0) return { bytes, err: 0, side: null };
        const data = this.io.data;
        if (data === null || n > data.byteLength) return { bytes, err: -ERRNO.EIO, side: 'read' };
        for (let off = 0; off < n; ) {
          const w = await this.rv6.write(dst, data, n - off);
          if (w <= 0) return { bytes, err: w < 0 ? w : -ERRNO.EIO, side: 'write' };
          if (w < n - off) data.copyFrom(data, w, 0, n - off - w);
          off += w;
          bytes += w;
        }
        return n;
      });
      if (typeof r !== 'number') return r;
    }
  }

  // ---- files -------------------------------------------------------------------------------------

  /** Close `fd` and forget its buffered input; 0 or -errno. */
  close(fd: number): Promise<number> {
    this.lineBuffers.delete(fd);
    return this.rv6.close(fd);
  }

  async stat(path: string): Promise<Stat | number> {
    return statOf(await this.rv6.stat(path));
  }

  async fstat(fd: number): Promise<Stat | number> {
    return statOf(await this.rv6.fstat(fd));
  }

  /**
   * The regular file stdout writes to, or null (a pipe, the console). cat and grep refuse an input
   * that is this file (`sameFile`), as GNU's do: they would read back what they append and never
   * end (`cat x f > f`, `cat f >> f`).
   */
  async outputFile(): Promise<Stat | null> {
    const st = await this.fstat(1);
    return typeof st !== 'number' && st.type === T_FILE ? st : null;
  }

  /**
   * Whether `fd` is `out` (an outputFile) itself. Even read from its end, such an input would read
   * back what is appended: another writer may refill it while the copy runs (`cat f
   * >> f | pwd > f` grew f for ever after pwd's truncation emptied it for the check), and an
   * append's bytes land after the reader.
   */
  async sameFile(fd: number, out: Stat): Promise<boolean> {
    const st = await this.fstat(fd);
    return typeof st !== 'number' && st.dev === out.dev && st.ino === out.ino;
  }

  /** Whether `fd` is the console (a shell is interactive when its input is). */
  async isConsole(fd: number): Promise<boolean> {
    const st = await this.fstat(fd);
    return typeof st !== 'number' && st.type === T_DEVICE && st.major === DEV_CONSOLE;
  }

  /** The entries of the directory open as `fd`, in directory order, or -errno. */
  async readdirFd(fd: number): Promise<Dirent[] | number> {
    const decoder = new TextDecoder('utf-8');
    const entries: Dirent[] = [];
    let off = 0;
    for (;;) {
      const r = await this.exclusive(async (): Promise<number> => {
        const io = this.io;
        io.n = BUFSZ;
        io.off = off;
        this.io = await this.rv6.getdents(fd, io);
        const n = this.io.n;
        const data = this.io.data;
        if (n <= 0) return n;
        if (data === null || n > data.byteLength) return -ERRNO.EIO;
        data.read(0, this.inStaging, 0, n);
        const chunk = parseDirents(decoder.decode(this.inStaging.subarray(0, n)));
        if (chunk === null) return -ERRNO.EIO;
        entries.push(...chunk);
        off = this.io.off;
        return n;
      });
      if (r < 0) return r;
      if (r === 0) return entries;
    }
  }

  /** The entries of the directory `path`, or -errno. */
  async readdir(path: string): Promise<Dirent[] | number> {
    const fd = await this.rv6.open(path, 0);
    if (fd < 0) return fd;
    const r = await this.readdirFd(fd);
    await this.close(fd);
    return r;
  }

  /**
   * The operands of a program that takes no options: `--` ends the options it does not have (POSIX
   * guideline 10: `cat -- -n` reads a file named -n), and an option is a usage error with
   * `synopsis`, whose status is returned instead.
   */
  async operands(synopsis: string): Promise<string[] | number> {
    const o = getopt(this.args.slice(1), '');
    return typeof o === 'string' ? this.usage(synopsis, o) : o.operands;
  }

  /**
   * Check the arguments of a program that takes neither options nor operands (ps, pwd, uptime,
   * domains): null when there are none (`--` alone is fine), else the status of the usage error
   * with `synopsis` (an option, or `extra operand 'x'`), rather than ignoring them.
   */
  async noOperands(synopsis: string): Promise<number | null> {
    const operands = await this.operands(synopsis);
    if (typeof operands === 'number') return operands;
    return operands.length === 0 ? null : this.usage(synopsis, `extra operand '${operands[0]}'`);
  }

  /**
   * The whole of `cmd SRC DST | cmd SRC... DIR` (cp, mv, ln): check the operands (usage error
   * with `synopsis` if fewer than two), find the pairs, run `step` on each (it reports its own
   * failures and returns a status); 0 if every step returned 0, else 1.
   */
  async eachTarget(synopsis: string, step: (src: string, dst: string) => Promise<number>): Promise<number> {
    const operands = await this.operands(synopsis);
    if (typeof operands === 'number') return operands;
    if (operands.length < 2) return this.usage(synopsis);
    const pairs = await this.targets(operands);
    if (typeof pairs === 'number') return this.fail(operands[operands.length - 1]!, pairs);
    let status = 0;
    for (const [src, dst] of pairs) if ((await step(src, dst)) !== 0) status = 1;
    return status;
  }

  /**
   * The (source, destination) pairs of `cmd SRC DST` or `cmd SRC... DIR` (cp, mv, ln): when the
   * last operand is a directory, each source goes into it under its base name. At least two
   * operands; -ENOTDIR when there are more than two and the last is not a directory.
   */
  async targets(operands: readonly string[]): Promise<[string, string][] | number> {
    const last = operands[operands.length - 1]!;
    const sources = operands.slice(0, -1);
    const st = await this.stat(last);
    if (typeof st !== 'number' && st.type === T_DIR) return sources.map((src) => [src, joinPath(last, basename(src))]);
    if (sources.length > 1) return -ERRNO.ENOTDIR;
    return [[sources[0]!, last]];
  }

  // ---- processes ---------------------------------------------------------------------------------

  /** Wait for the child `pid` (-1: any) and reap it. */
  async wait(pid: number): Promise<ChildStatus> {
    const w = await this.rv6.wait(pid);
    const r = { pid: w.pid, status: w.status };
    w.drop();
    return r;
  }

  // ---- errors ------------------------------------------------------------------------------------

  /** Print `prog: subject: message of err` on stderr. */
  warn(subject: string, err: number): Promise<void> {
    return this.eprint(`${this.name}: ${subject}: ${strerror(err)}\n`);
  }

  /** warn, then give the exit status to return (1 unless said otherwise). */
  async fail(subject: string, err: number, status = 1): Promise<number> {
    await this.warn(subject, err);
    return status;
  }

  /** Print `prog: message` on stderr; returns 1 (the exit status). */
  async error(message: string): Promise<number> {
    await this.eprint(`${this.name}: ${message}\n`);
    return 1;
  }

  /** Print `prog: problem` (if given) and `usage: synopsis` on stderr; returns 2 (a usage error). */
  async usage(synopsis: string, problem?: string): Promise<number> {
    await this.eprint(`${problem === undefined ? '' : `${this.name}: ${problem}\n`}usage: ${synopsis}\n`);
    return 2;
  }

  /**
   * Run `op` on each argument in turn, reporting each failure (`prog: arg: message`) and going on
   * with the rest; 0 if all succeeded, else 1.
   */
  async forEach(args: readonly string[], op: (arg: string) => Promise<number>): Promise<number> {
    let status = 0;
    for (const a of args) {
      const r = await op(a);
      if (r < 0) status = await this.fail(a, r);
    }
    return status;
  }

  // ---- lifetime ----------------------------------------------------------------------------------

  /**
   * The exit status of a program whose stdout failed with `err`: STATUS_BROKEN_PIPE, silently,
   * when the reader is gone (Unix: killed by SIGPIPE), else 1 after `prog: write error: ...`.
   */
  async outputFailed(err: number): Promise<number> {
    if (err === -ERRNO.EPIPE) return STATUS_BROKEN_PIPE;
    return this.fail('write error', err);
  }

  /** Flush; the exit status: `status`, or the output failure if stdout failed. */
  async finish(status: number): Promise<number> {
    await this.flush();
    const s = this.out.err !== 0 ? await this.outputFailed(this.out.err) : status;
    return s & 0xff;
  }

  /** Free the exchange-heap buffers (those not lost in a call that failed). */
  release(): void {
    if (this.xbuf.valid) this.xbuf.drop();
    if (this.io.valid) this.io.drop();
  }

  /** Run `fn` when no other task of this program uses the exchange-heap buffers. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    // The next call waits for this one however it ends. allSettled, not run.then(f, f): the lock
    // is a chain nobody awaits until the next call, so it must run none of this program's code —
    // after the program's death that code is stopped by a throw, which would reject the lock with
    // nobody left to handle it (Sys.detach).
    this.lock = Promise.allSettled([run]);
    return run;
  }
}

function statOf(st: RRef<StatBuf>): Stat | number {
  const err = st.err;
  const r: Stat | number = err < 0 ? err : {
    type: st.type, nlink: st.nlink, dev: st.dev, ino: st.ino, size: st.size, major: st.major, minor: st.minor,
  };
  st.drop();
  return r;
}

/**
 * A user program's Program export: `body` runs with a fresh Ulib per process and returns the
 * exit status; output is flushed at the end and the buffers are freed. An exception is not
 * caught: it kills the program's domain, and the process ends with STATUS_CRASHED.
 */
export function program(sys: Sys, name: string, body: (u: Ulib) => Promise<number>): Program {
  return {
    async main(rv6: Rv6, argv: string): Promise<number> {
      const u = new Ulib(sys, rv6, name, argv);
      try {
        return await u.finish(await body(u));
      } finally {
        u.release();
      }
    },
  };
}
