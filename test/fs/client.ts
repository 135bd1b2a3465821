/**
 * A kernel-side client of an Rv6Fs (the fs domain's interface) for the fs tests: every call with
 * exchange-heap buffers owned by the kernel, results as plain values.
 *
 * Invariant: every buffer and IoBuf a method allocates is dropped before it returns (so tests can
 * assert on heap usage), and a failing call answers -errno rather than throwing, except the
 * whole-file conveniences (writeFile, readFile, readAll, dents), which assert success.
 */
import assert from 'node:assert/strict';
import { KERNEL_OWNER } from '../../src/kernel/heap.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { O_CREATE, O_RDONLY, O_TRUNC, O_WRONLY, type IoBuf, type Rv6Fs, type StatBuf } from '../../src/interfaces/rv6.js';
import type { RRef, RRefArray } from '../../src/runtime/types.js';

/** Calls on an Rv6Fs as the kernel: buffers in the exchange heap, owned by the kernel. */
export class Client {
  constructor(readonly k: Kernel, readonly fs: Rv6Fs) {}

  bytes(n: number): RRefArray<number> {
    return this.k.kit.allocBytes(KERNEL_OWNER, Math.max(1, n), 64) as unknown as RRefArray<number>;
  }

  iobuf(cap: number, n: number, off: number): RRef<IoBuf> {
    const io = this.k.kit.allocStruct(KERNEL_OWNER, 'IoBuf') as unknown as RRef<IoBuf>;
    io.data = this.bytes(cap);
    io.n = n;
    io.off = off;
    return io;
  }

  async write(file: number, off: number, data: Uint8Array): Promise<number> {
    const b = this.bytes(data.length);
    b.write(0, data);
    try {
      return await this.fs.write(file, off, b, data.length);
    } finally {
      b.drop();
    }
  }

  /** Read up to `n` bytes at `off`: the bytes, or -errno. */
  async read(file: number, off: number, n: number, cap = n): Promise<Uint8Array | number> {
    const io = await this.fs.read(file, this.iobuf(cap, n, off));
    try {
      if (io.n < 0) return io.n;
      const out = new Uint8Array(io.n);
      io.data!.read(0, out, 0, io.n);
      return out;
    } finally {
      io.drop();
    }
  }

  async readAll(file: number, chunk = 64 * 1024): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (let off = 0; ; ) {
      const r = await this.read(file, off, chunk);
      assert.ok(typeof r !== 'number', `read at ${off}: ${String(r)}`);
      if (r.length === 0) break;
      parts.push(r);
      off += r.length;
    }
    return new Uint8Array(Buffer.concat(parts));
  }

  /** Every entry through getdents with a `cap`-byte buffer: [inum, name][], and the number of calls. */
  async dents(file: number, cap: number): Promise<{ entries: [number, string][]; calls: number }> {
    const entries: [number, string][] = [];
    let off = 0;
    for (let calls = 1; ; calls++) {
      const io = await this.fs.getdents(file, this.iobuf(cap, 0, off));
      try {
        assert.ok(io.n >= 0, `getdents at ${off}: ${io.n}`);
        if (io.n === 0) return { entries, calls };
        const raw = new Uint8Array(io.n);
        io.data!.read(0, raw, 0, io.n);
        const text = Buffer.from(raw).toString('utf8');
        assert.ok(text.endsWith('\0'), 'only whole entries');
        for (const e of text.slice(0, -1).split('\0')) {
          const sp = e.indexOf(' ');
          entries.push([Number(e.slice(0, sp)), e.slice(sp + 1)]);
        }
        assert.ok(io.off > off, 'the offset advances');
        off = io.off;
      } finally {
        io.drop();
      }
    }
  }

  async stat(path: string, cwd = 0): Promise<StatBuf> {
    return plainStat(await this.fs.stat(path, cwd));
  }

  async fstat(file: number): Promise<StatBuf> {
    return plainStat(await this.fs.fstat(file));
  }

  async writeFile(path: string, data: Uint8Array, cwd = 0): Promise<void> {
    const f = await this.fs.open(path, O_CREATE | O_WRONLY | O_TRUNC, cwd);
    assert.ok(f > 0, `open ${path}: ${f}`);
    assert.equal(await this.write(f, 0, data), data.length);
    assert.equal(await this.fs.close(f), 0);
  }

  async readFile(path: string, cwd = 0): Promise<Uint8Array> {
    const f = await this.fs.open(path, O_RDONLY, cwd);
    assert.ok(f > 0, `open ${path}: ${f}`);
    try {
      return await this.readAll(f);
    } finally {
      assert.equal(await this.fs.close(f), 0);
    }
  }
}

export function plainStat(h: RRef<StatBuf>): StatBuf {
  const s = { err: h.err, type: h.type, nlink: h.nlink, dev: h.dev, ino: h.ino, size: h.size, major: h.major, minor: h.minor };
  h.drop();
  return s;
}

