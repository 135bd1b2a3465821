/**
 * Random file-system workloads for the device-level crash tests (power cut, driver crash), with a
 * model that says what every Rv6Fs call must return and which trees may be on disk afterwards.
 *
 * A workload is a list of `Op`s over a fixed name space (directories /a, /a/b, /c and files f0..f7
 * spread over them and the root). `plan` turns an op into the Rv6Fs calls it makes, each with the
 * result the model expects and the model changes it commits, one per transaction: a write of n
 * bytes commits ceil(n / maxOpBytes) transactions (fs.ts writeAt), every other call at most one
 * (the images are small enough that a truncation or an unlink frees its blocks in one, and have
 * one bitmap block: `opBytes`). A `batch`
 * op issues appends and unlinks of distinct files (not merely distinct names) concurrently, as one step whose strands (one per
 * file) may commit in any interleaving, together (group commit) or apart.
 *
 * `runCalls` runs the calls one step at a time, `walkTree` reads the tree back through the fs
 * domain, `rebootAndCheck` does that on a freshly booted stack and runs fsck.
 *
 * Trees are compared in a canonical text form (`canonical`): one line per directory and per file
 * name with the file's length, a digest of its content and the first name (in sorted order) of its
 * inode, so hard links are compared as links, not as copies.
 *
 * Invariant: the model never looks at the file system; `plan` only reads and advances the model.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { maxOpBytes } from '../../src/domains/fs/fs.js';
import { geometryOf, type Variant } from '../../src/domains/fs/format.js';
import { ERRNO, O_CREATE, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, T_DIR } from '../../src/interfaces/rv6.js';
import { bootFs } from '../../src/host/bdev-image.js';
import { bootStorage } from '../../src/host/storage.js';
import { Client } from './client.js';
import { assertClean, pattern } from './helpers.js';

/** Directories of the name space; index 0 is the root. Files are f0..f7. */
const DIRS = ['/', '/a', '/a/b', '/c'] as const;
const NFILES = 8;

export type Op =
  | { k: 'create'; f: number }
  | { k: 'write'; f: number; at: number; len: number; seed: number }
  | { k: 'append'; f: number; len: number; seed: number }
  | { k: 'trunc'; f: number }
  | { k: 'unlink'; f: number }
  | { k: 'link'; f: number; to: number }
  | { k: 'rename'; f: number; to: number }
  | { k: 'mkdir'; d: number }
  | { k: 'rmdir'; d: number }
  | { k: 'sync' }
  | { k: 'batch'; items: Array<{ f: number; unlink: boolean; len: number; seed: number }> };

/** Half of the files live in the root, so that most ops find their directory. */
const fileDir = (f: number): string => (f < NFILES / 2 ? '/' : DIRS[1 + (f % (DIRS.length - 1))]!);
const filePath = (f: number): string => (fileDir(f) === '/' ? `/f${f}` : `${fileDir(f)}/f${f}`);
const parentOf = (path: string): string => path.slice(0, path.lastIndexOf('/')) || '/';

/** maxOpBytes of the workload's images: one bitmap block each (up to 8 MiB xv6, 128 MiB large). */
const opBytes = (variant: Variant): number => maxOpBytes(geometryOf(variant), 1);

/**
 * Op generator for `variant`: lengths mostly small, sometimes beyond the direct blocks (12 KiB
 * xv6, 96 KiB large) so files cross into the indirect tree, and beyond one transaction.
 */
export function opArb(variant: Variant): fc.Arbitrary<Op> {
  const g = geometryOf(variant);
  const f = fc.integer({ min: 0, max: NFILES - 1 });
  const d = fc.integer({ min: 1, max: DIRS.length - 1 });
  const len = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 2 * g.bsize }) },
    { weight: 1, arbitrary: fc.integer({ min: 2 * g.bsize, max: (g.ndirect + 4) * g.bsize }) },
  );
  return fc.oneof(
    { weight: 2, arbitrary: fc.record({ k: fc.constant('create' as const), f }) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant('write' as const), f, at: fc.double({ min: 0, max: 1, noNaN: true }), len, seed: fc.nat(1 << 20) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('append' as const), f, len, seed: fc.nat(1 << 20) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('trunc' as const), f }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('unlink' as const), f }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('link' as const), f, to: f }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('rename' as const), f, to: f }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('mkdir' as const), d }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('rmdir' as const), d }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('sync' as const) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        k: fc.constant('batch' as const),
        items: fc.uniqueArray(fc.record({ f: fc.nat(NFILES / 2 - 1), unlink: fc.boolean(), len: fc.integer({ min: 1, max: opBytes(variant) }), seed: fc.nat(1 << 20) }), { minLength: 2, maxLength: 3, selector: (i) => i.f }),
      }),
    },
  );
}

/** A file's content; hard links share one node. */
interface FileNode {
  data: Uint8Array;
}

class Model {
  readonly dirs = new Set<string>(['/']);
  readonly files = new Map<string, FileNode>();

  clone(): Model {
    const m = new Model();
    for (const d of this.dirs) m.dirs.add(d);
    const copies = new Map<FileNode, FileNode>();
    for (const [p, n] of this.files) {
      let c = copies.get(n);
      if (c === undefined) copies.set(n, (c = { data: n.data }));
      m.files.set(p, c);
    }
    return m;
  }

  canonical(): string {
    const entries: TreeEntry[] = [...this.dirs].filter((d) => d !== '/').map((path) => ({ path, dir: true }));
    for (const [path, n] of this.files) entries.push({ path, dir: false, data: n.data, inode: n });
    return canonical(entries);
  }
}

interface TreeEntry {
  path: string;
  dir: boolean;
  data?: Uint8Array;
  /** Anything identifying the file's inode (equal for hard links). */
  inode?: unknown;
}

function canonical(entries: TreeEntry[]): string {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const firstName = new Map<unknown, string>();
  const lines: string[] = [];
  for (const e of sorted) {
    if (e.dir) {
      lines.push(`dir  ${e.path}`);
      continue;
    }
    if (!firstName.has(e.inode)) firstName.set(e.inode, e.path);
    const digest = createHash('sha1').update(e.data!).digest('hex').slice(0, 12);
    lines.push(`file ${e.path} ${e.data!.length} ${digest} inode-of ${firstName.get(e.inode)}`);
  }
  return lines.join('\n');
}

/** State carried between the calls of one op (the file id its open returned). */
interface OpCtx {
  file: number;
}

export interface Call {
  what: string;
  /** Whether it uses the file id the op's open returned (and is skipped when that open failed). */
  usesFile?: boolean;
  run(c: Client, ctx: OpCtx): Promise<number>;
  /** What it must return: a number, or 'file' for any file id (> 0). */
  expect: number | 'file';
  /**
   * The model changes it commits, one per transaction, in commit order: one strand, or one per
   * concurrent part of a batch, which may commit in any interleaving.
   */
  strands: Stage[][];
}

type Stage = (m: Model) => void;

const E = (name: keyof typeof ERRNO): number => -ERRNO[name];

function openCall(path: string, flags: number, expect: number | 'file', stages: Stage[]): Call {
  return {
    what: `open ${path} 0x${flags.toString(16)}`,
    run: async (c, ctx) => (ctx.file = await c.fs.open(path, flags, 0)),
    expect, strands: [stages],
  };
}

const closeCall: Call = { what: 'close', usesFile: true, run: (c, ctx) => c.fs.close(ctx.file), expect: 0, strands: [[]] };

/**
 * write(file, off (-1: append), data) of a file of `size` bytes: one stage per transaction of
 * `perTx` bytes — after, in the xv6 variant (no holes), those zero-filling up to `at` (fs.ts).
 */
function writeCall(path: string, off: number, data: Uint8Array, at: number, size: number, perTx: number, holes: boolean): Call {
  const stages: Stage[] = [];
  const extend = (n: FileNode, len: number): Uint8Array => {
    const out = new Uint8Array(Math.max(n.data.length, len));
    out.set(n.data);
    return out;
  };
  for (let filled = size; !holes && filled < at; filled = Math.min(at, filled + perTx)) {
    const to = Math.min(at, filled + perTx);
    stages.push((m) => {
      const n = m.files.get(path)!;
      n.data = extend(n, to);
    });
  }
  for (let done = 0; done < data.length; done += perTx) {
    const end = Math.min(data.length, done + perTx);
    stages.push((m) => {
      const n = m.files.get(path)!;
      const out = extend(n, at + end);
      out.set(data.subarray(done, end), at + done);
      n.data = out;
    });
  }
  return { what: `write ${path} at ${off} ${data.length} bytes`, usesFile: true, run: (c, ctx) => c.write(ctx.file, off, data), expect: data.length, strands: [stages] };
}

function simple(what: string, run: (c: Client) => Promise<number>, expect: number, stage?: Stage): Call {
  return { what, run: (c) => run(c), expect, strands: [expect === 0 && stage ? [stage] : []] };
}

/** Run one op's calls in order (skipping those whose file failed to open): the first unexpected answer, or 0. */
async function runStrand(c: Client, calls: Call[]): Promise<number> {
  const ctx: OpCtx = { file: 0 };
  for (const call of calls) {
    if (call.usesFile && ctx.file <= 0) continue;
    const r = await call.run(c, ctx);
    if (!matches(call, r)) return r;
  }
  return 0;
}

/** The ops of a batch, concurrently: one call answering 0, or the first unexpected answer of a part. */
function batchCall(parts: Call[][]): Call {
  return {
    what: `batch [${parts.map((p) => p.map((c) => c.what).join(', ')).join(' | ')}]`,
    run: async (c) => (await Promise.all(parts.map((p) => runStrand(c, p)))).find((r) => r !== 0) ?? 0,
    expect: 0,
    strands: parts.map((p) => p.flatMap((call) => call.strands.flat())),
  };
}

/** The calls `op` makes against the model's state `m`, and `m` advanced past them. */
function plan(op: Op, m: Model, variant: Variant): Call[] {
  const g = geometryOf(variant);
  const calls: Call[] = [];
  const add = (call: Call): void => {
    calls.push(call);
    for (const s of call.strands.flat()) s(m);
  };
  const create = (path: string): Stage[] => (m.files.has(path) ? [] : [(mm) => void mm.files.set(path, { data: new Uint8Array(0) })]);
  switch (op.k) {
    case 'create': case 'write': case 'append': case 'trunc': {
      const path = filePath(op.f);
      const exists = m.files.has(path);
      if (!m.dirs.has(parentOf(path)) || (op.k === 'trunc' && !exists)) {
        add(openCall(path, op.k === 'trunc' ? O_WRONLY | O_TRUNC : O_CREATE | O_RDWR, E('ENOENT'), []));
        break;
      }
      const empties = exists && m.files.get(path)!.data.length > 0 ? [(mm: Model) => void (mm.files.get(path)!.data = new Uint8Array(0))] : [];
      if (op.k === 'create') add(openCall(path, O_CREATE | O_TRUNC | O_WRONLY, 'file', exists ? empties : create(path)));
      else if (op.k === 'trunc') add(openCall(path, O_TRUNC | O_WRONLY, 'file', empties));
      else {
        add(openCall(path, O_CREATE | O_RDWR, 'file', create(path)));
        // A write may start up to two blocks beyond the end (a hole, or zeros in the xv6 variant).
        const size = m.files.get(path)!.data.length;
        const at = op.k === 'append' ? size : Math.floor(op.at * (size + 2 * g.bsize));
        const n = Math.min(op.len, g.maxFileSize - at);
        if (n > 0) add(writeCall(path, op.k === 'append' ? -1 : at, pattern(n, op.seed), at, size, opBytes(variant), g.holes));
      }
      add(closeCall);
      break;
    }
    case 'unlink': {
      const path = filePath(op.f);
      add(simple(`unlink ${path}`, (c) => c.fs.unlink(path, 0), m.files.has(path) ? 0 : E('ENOENT'), (mm) => void mm.files.delete(path)));
      break;
    }
    case 'link': {
      const from = filePath(op.f), to = filePath(op.to);
      const expect = !m.files.has(from) || !m.dirs.has(parentOf(to)) ? E('ENOENT') : m.files.has(to) ? E('EEXIST') : 0;
      add(simple(`link ${from} ${to}`, (c) => c.fs.link(from, to, 0), expect, (mm) => void mm.files.set(to, mm.files.get(from)!)));
      break;
    }
    case 'rename': {
      // One transaction: the file has its old name or its new one (a replaced file is freed after).
      const from = filePath(op.f), to = filePath(op.to);
      const node = m.files.get(from);
      const expect = node === undefined || !m.dirs.has(parentOf(to)) ? E('ENOENT') : 0;
      const stage = node === m.files.get(to) ? undefined : (mm: Model): void => {
        mm.files.set(to, mm.files.get(from)!);
        mm.files.delete(from);
      };
      add(simple(`rename ${from} ${to}`, (c) => c.fs.rename(from, to, 0), expect, stage));
      break;
    }
    case 'mkdir': {
      const d = DIRS[op.d]!;
      const expect = !m.dirs.has(parentOf(d)) ? E('ENOENT') : m.dirs.has(d) ? E('EEXIST') : 0;
      add(simple(`mkdir ${d}`, (c) => c.fs.mkdir(d, 0), expect, (mm) => void mm.dirs.add(d)));
      break;
    }
    case 'rmdir': {
      const d = DIRS[op.d]!;
      const inside = (p: string): boolean => p.startsWith(`${d}/`);
      const expect = !m.dirs.has(d) ? E('ENOENT') : [...m.dirs, ...m.files.keys()].some(inside) ? E('ENOTEMPTY') : 0;
      add(simple(`rmdir ${d}`, (c) => c.fs.rmdir(d, 0), expect, (mm) => void mm.dirs.delete(d)));
      break;
    }
    case 'sync':
      add(simple('sync', (c) => c.fs.sync(), 0));
      break;
    case 'batch': {
      // Distinct files, so each part's answers and changes are those it has alone. Distinct names
      // are not enough: a name linked to an earlier item's file is left out (two appends to one
      // inode through two names would each land at the end, not where the model planned them).
      const nodes = new Set<FileNode>();
      const items = op.items.filter((i) => {
        const node = m.files.get(filePath(i.f));
        if (node === undefined) return true;
        if (nodes.has(node)) return false;
        nodes.add(node);
        return true;
      });
      add(batchCall(items.map((i) => plan(i.unlink ? { k: 'unlink', f: i.f } : { k: 'append', f: i.f, len: i.len, seed: i.seed }, m.clone(), variant))));
      break;
    }
  }
  return calls;
}

/** Whether `r` is what `call` expects. */
export function matches(call: Call, r: number): boolean {
  return call.expect === 'file' ? r > 0 : r === call.expect;
}

export interface Workload {
  calls: Call[];
  /** states[i]: the tree before call i (states[calls.length]: after the last). */
  states: string[];
  /** inFlight[i]: every tree call i may leave when interrupted: before it, after each transaction. */
  inFlight: string[][];
}

/** Every tree `strands` may leave applied to `m` when interrupted: any prefix of each strand. */
function interrupted(m: Model, strands: Stage[][]): string[] {
  const trees = new Set<string>();
  const go = (i: number, mm: Model): void => {
    if (i === strands.length) {
      trees.add(mm.canonical());
      return;
    }
    const next = mm.clone();
    go(i + 1, next.clone());
    for (const s of strands[i]!) {
      s(next);
      go(i + 1, next.clone());
    }
  };
  go(0, m);
  return [...trees];
}

/** The workload as calls, with the canonical trees around each. */
export function planWorkload(ops: Op[], variant: Variant): Workload {
  const m = new Model();
  const calls: Call[] = [];
  const states = [m.canonical()];
  const inFlight: string[][] = [];
  for (const op of ops) {
    for (const call of plan(op, m.clone(), variant)) {
      inFlight.push(interrupted(m, call.strands));
      for (const s of call.strands.flat()) s(m);
      calls.push(call);
      states.push(m.canonical());
    }
  }
  return { calls, states, inFlight };
}

/** The tree the fs shows (through getdents, stat and read), in canonical form. */
export async function walkTree(c: Client): Promise<string> {
  const entries: TreeEntry[] = [];
  const walk = async (dir: string): Promise<void> => {
    const fd = await c.fs.open(dir, O_RDONLY, 0);
    assert.ok(fd > 0, `open ${dir}: ${fd}`);
    const { entries: dents } = await c.dents(fd, 256);
    assert.equal(await c.fs.close(fd), 0);
    for (const [, name] of dents) {
      if (name === '.' || name === '..') continue;
      const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
      const st = await c.stat(path);
      assert.equal(st.err, 0, `stat ${path}`);
      if (st.type === T_DIR) {
        entries.push({ path, dir: true });
        await walk(path);
      } else {
        entries.push({ path, dir: false, data: await c.readFile(path), inode: st.ino });
      }
    }
  };
  await walk('/');
  return canonical(entries);
}

/** The trees the disk may hold when calls [0, returned) returned undisturbed and call `returned` was disturbed. */
export function expectedTrees(w: Workload, returned: number): string[] {
  return returned === w.calls.length ? [w.states[returned]!] : w.inFlight[returned]!;
}

/** Where a disturbance (power cut, driver crash) left the workload, for failure messages. */
export function describeStop(w: Workload, returned: number): string {
  return returned === w.calls.length ? 'after the last call' : `during call ${returned} (${w.calls[returned]!.what})`;
}

export interface RunOptions {
  /** Whether nothing has disturbed the run yet, asked after each call (default: always). */
  undisturbed?: () => boolean;
  /** Whether a call may answer `r` once the run was disturbed (default: any number). */
  disturbedOk?: (call: Call, r: number) => boolean;
  /** Runs after every call (e.g. to arm the next injected fault). */
  afterCall?: () => void;
}

/**
 * Run the calls one at a time. While `undisturbed()` holds after a call returns, the call counts as
 * returned before the disturbance and must answer what the model expects; later calls must answer
 * a number (the fs domain never throws) that `disturbedOk` accepts, and those using a file whose
 * open failed are not made. Returns how many returned undisturbed.
 */
export async function runCalls(c: Client, calls: Call[], o: RunOptions = {}): Promise<number> {
  let returned = 0;
  const ctx: OpCtx = { file: 0 };
  for (const [i, call] of calls.entries()) {
    if (call.usesFile && ctx.file <= 0) continue; // its open failed, after a disturbance
    const r = await call.run(c, ctx);
    assert.ok(Number.isInteger(r), `call ${i} (${call.what}) answered ${r}`);
    if (returned === i && (o.undisturbed?.() ?? true)) {
      assert.ok(matches(call, r), `call ${i} (${call.what}) answered ${r}, the model expects ${call.expect}`);
      returned = i + 1;
    } else {
      assert.ok(o.disturbedOk?.(call, r) ?? true, `call ${i} (${call.what}) answered ${r} after the disturbance`);
    }
    o.afterCall?.();
  }
  return returned;
}

/**
 * Reboot on the image file: a new kernel, controller, nvme driver and fs domain; mount (log
 * recovery); the tree must be one of `trees`; unmount; then fsck the image.
 */
export async function rebootAndCheck(img: string, trees: string[], what: string): Promise<void> {
  const s = await bootStorage({ image: img, physBytes: 64 << 20, log: () => {} });
  try {
    const c = new Client(s.kernel, bootFs(s.kernel, s.driverName));
    assert.equal(await c.fs.mount(), 0, `${what}: mount after the reboot`);
    await assertTreeIn(c, trees, what);
    assert.equal(await c.fs.unmount(), 0);
  } finally {
    await s.stop();
  }
  assertClean(img);
}

/** The tree the mounted fs shows is one of `trees`. */
export async function assertTreeIn(c: Client, trees: string[], what: string): Promise<void> {
  const tree = await walkTree(c);
  const show = (t: string): string => t || '(empty)';
  assert.ok(trees.includes(tree), `${what}: the tree is\n${show(tree)}\n-- expected one of --\n${trees.map(show).join('\n--\n')}`);
}
