/**
 * nvme: the NVMe driver domain. Glues the driver logic (NvmeCore, ./core.ts) to the kernel: BAR0,
 * WAKE and interrupts from `sys.device`, queue memory from `sys.alloc.bytes`, and exports BDev.
 *
 * Config (`sys.config`): mode 'poll' (default) | 'interrupt'; queueDepth (default 256);
 * timeoutMs (default 5000; a command past it panics the domain, see below); spinMs (poll mode:
 * how long a call spins on the completion queue before yielding to the event loop, default 2).
 *
 * Invariants:
 *  - bring-up runs in init, synchronously: disable (a controller reset, dropping whatever a dead
 *    predecessor left queued), admin queue, Identify, I/O queues. So a restart by the shadow IS
 *    the replay of the initialization protocol;
 *  - zero copy: PRPs point straight into the caller's RRef buffers (moved-in requests or borrowed
 *    write buffers); the driver never touches their bytes;
 *  - every request moved in comes back in the result with `status` set, errors included, in the
 *    order it came (submitAndPoll moves each back as soon as it and all before it ended); nothing
 *    here throws on a bad request (a throw would be a panic);
 *  - a request goes back only once the controller is done with it: a command that timed out may
 *    still move data, so a timeout is this domain's panic (the kernel stops the device before
 *    anyone gets the buffers again), never an EIO with the buffer.
 */
import { BLK_EINVAL, BLK_EIO, BLK_EROFS, BLK_FLUSH, BLK_NVME_STATUS, BLK_READ, BLK_WRITE, type BDev, type BlkReq } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { DmaBytes, RRef, RRefArray, RRefDeque } from '../../runtime/types.js';
import { SC_NS_WRITE_PROTECTED, createNvmeCore, type BlockRequest, type NvmeError, type NvmeInfo } from './core.js';

/** The core's name of each BlkReq.op (indexed by BLK_READ, BLK_WRITE, BLK_FLUSH). */
const OPS = ['read', 'write', 'flush'] as const;
/** A batch rings the doorbell after every this many requests (a power of two), not only at its end. */
const EARLY_RING = 8;

/** A batch: the requests of one call. */
interface Batch {
  remaining: number;
  done: boolean;
  resolve: (() => void) | null;
  /** submitAndPoll: its requests in order, the deque they go back into, how many went back. */
  reqs: Req[] | null;
  dq: RRefDeque<RRef<BlkReq>> | null;
  returned: number;
}

/** Driver-private request record (reused). */
interface Req extends BlockRequest {
  h: RRef<BlkReq> | null;
  batch: Batch | null;
  status: number;
  ended: boolean;
}

export function init(sys: Sys): BDev {
  const dev = sys.device ?? sys.panic('nvme: loaded without a device');
  const cfg = sys.config;
  const interrupts = cfg.mode === 'interrupt';
  const spinMs = typeof cfg.spinMs === 'number' ? cfg.spinMs : 2;
  const core = createNvmeCore({
    bar0: dev.bar0,
    wakeWord: dev.wakeWord,
    alloc: (n, align) => sys.alloc.bytes(n, align),
    now: () => sys.now(),
    spawn: (fn) => sys.spawn(fn),
    interrupts,
    queueDepth: typeof cfg.queueDepth === 'number' ? cfg.queueDepth : 256,
    timeoutMs: typeof cfg.timeoutMs === 'number' ? cfg.timeoutMs : 5000,
  });
  // core.init() is async in form, but bring-up itself is synchronous (it polls the controller):
  // run it directly so init can export BDev at once, and report its error if it fails.
  let info: NvmeInfo;
  try {
    info = core.bringUp();
  } catch (e) {
    return sys.panic(`nvme: controller bring-up failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const bs = info.blockSize;

  const pool: Req[] = [];
  const waiting: Req[] = []; // accepted, not yet on the submission queue (queue full)
  let waitHead = 0;
  const done: BlockRequest[] = [];

  const take = (): Req => pool.pop() ?? { op: 'read', lba: 0, nblocks: 0, buf: null, bufOff: 0, error: null, h: null, batch: null, status: 0, ended: false };

  const statusOf = (e: NvmeError | null): number => {
    if (e === null) return 0;
    if (e.kind === 'status') {
      const st = (e.sct << 8) | e.sc;
      // A write-protected namespace is a read-only device to every caller (the file system, the
      // shell): EROFS says so, where the raw NVMe status would be an unexplained number.
      return st === SC_NS_WRITE_PROTECTED ? BLK_EROFS : BLK_NVME_STATUS - st;
    }
    if (e.kind === 'request') return BLK_EINVAL;
    // A command that timed out is still the controller's: it may yet read or write its buffer
    // (a slow controller, not a dead one). Handing the request back would let that DMA land in
    // memory its caller, or whoever the heap gives it to next, owns. Only stopping the controller
    // ends it, and the kernel does that (detach: bus mastering off, function reset) before it
    // reclaims a dead driver's memory or the shadow recalls its requests to reissue them.
    if (e.kind === 'timeout') sys.panic(`${e.message}; the controller may still be transferring its data`);
    return BLK_EIO;
  };

  const finish = (r: Req, status: number): void => {
    r.status = status;
    r.buf = null;
    r.ended = true;
    const b = r.batch!;
    if (b.dq !== null) giveBack(b);
    if (--b.remaining === 0) {
      b.done = true;
      const res = b.resolve;
      b.resolve = null;
      if (res !== null) res();
    }
  };

  /** Move waiting requests onto the queue (as many as fit); `more`: part of a batch still being read in. */
  const pump = (more = false): void => {
    if (waitHead < waiting.length) {
      waitHead += core.submitBatch(waiting, 0, waitHead, more);
      if (waitHead === waiting.length) { waiting.length = 0; waitHead = 0; }
    }
  };

  const reap = (checkClock = true): void => {
    if (core.pollCompletions(done, checkClock) > 0) {
      for (let i = 0; i < done.length; i++) {
        const r = done[i] as Req;
        finish(r, statusOf(r.error));
      }
      done.length = 0;
    }
    pump();
  };

  /** Validate and queue one request; returns false if it finished at once (bad request). */
  const enqueue = (r: Req, op: number, lba: number, nblocks: number, buf: DmaBytes | null): void => {
    r.error = null;
    if (op === BLK_FLUSH) {
      r.op = 'flush'; r.lba = 0; r.nblocks = 0; r.buf = null;
    } else if ((op === BLK_READ || op === BLK_WRITE) && buf !== null && Number.isSafeInteger(lba) && lba >= 0 && nblocks >= 1 &&
               nblocks * bs <= buf.byteLength && lba + nblocks <= info.blocks) {
      r.op = OPS[op]!; r.lba = lba; r.nblocks = nblocks; r.buf = buf; r.bufOff = 0;
    } else {
      finish(r, BLK_EINVAL);
      return;
    }
    waiting.push(r);
  };

  const wait = async (b: Batch): Promise<void> => {
    pump();
    if (b.done) return;
    if (interrupts) {
      reap(); // completions that raced ahead of the interrupt
      if (b.done) return;
      await new Promise<void>((resolve) => { b.resolve = resolve; });
      return;
    }
    // Poll mode: spin on the completion queue for a short while, then poll between event-loop turns.
    const end = sys.now() + spinMs;
    for (let k = 1; ; k++) {
      const clock = (k & 15) === 0; // reading the clock costs more than an empty poll
      reap(clock);
      if (b.done) return;
      if (clock && sys.now() > end) break;
    }
    while (!b.done) {
      await sys.yield();
      reap();
    }
  };

  if (interrupts) {
    dev.onInterrupt((bits) => {
      core.onInterrupt(bits);
      reap();
    });
    // The timeout clock (commands the controller never answers).
    sys.setInterval(() => { if (core.inFlight() > 0) { core.onInterrupt(0); reap(); } }, 100);
  }

  const release = (r: Req): void => {
    r.h = null;
    r.batch = null;
    r.buf = null;
    r.ended = false;
    pool.push(r);
  };

  /**
   * Move the ended requests at the front of submitAndPoll batch `b` back into its deque, in order,
   * status set: done while the controller still works on the rest (it answers in order), so
   * little is left to do after the last completion.
   */
  const giveBack = (b: Batch): void => {
    const reqs = b.reqs!;
    const dq = b.dq!;
    while (b.returned < reqs.length) {
      const r = reqs[b.returned]!;
      if (!r.ended) return;
      const h = r.h!;
      h.status = r.status;
      dq.push(h);
      release(r);
      b.returned++;
    }
  };

  const one = async (op: number, lba: number, buf: DmaBytes | null, nblocks: number): Promise<number> => {
    const b: Batch = { remaining: 1, done: false, resolve: null, reqs: null, dq: null, returned: 0 };
    const r = take();
    r.batch = b;
    enqueue(r, op, lba, nblocks, buf);
    await wait(b);
    const s = r.status;
    release(r);
    return s;
  };

  return {
    blockSize: () => bs,
    blockCount: () => info.blocks,
    model: () => info.model,
    serial: () => info.serial,
    readOnly: () => info.writeProtected,
    async submit(h: RRef<BlkReq>) {
      h.status = await one(h.op, h.lba, h.data, h.nblocks);
      return h;
    },
    async submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      const n = dq.length;
      const reqs: Req[] = new Array(n);
      const b: Batch = { remaining: n, done: n === 0, resolve: null, reqs, dq: null, returned: 0 };
      for (let i = 0; i < n; i++) {
        const h = dq.pop()!;
        const r = take();
        r.h = h;
        r.batch = b;
        reqs[i] = r;
        const op = h.op;
        enqueue(r, op, h.lba, h.nblocks, op === BLK_FLUSH ? null : h.data);
        // Hand a polling controller the first requests while the rest are still being read out
        // of their handles: it starts on them at once instead of after the whole batch.
        if ((i & (EARLY_RING - 1)) === EARLY_RING - 1 && i + 1 < n) pump(true);
      }
      // Requests go back into the deque as they end, only once all n were taken out of it.
      b.dq = dq;
      giveBack(b);
      await wait(b);
      return dq;
    },
    write(lba: number, data: RRefArray<number>) {
      return data.byteLength % bs === 0 ? one(1, lba, data, data.byteLength / bs) : Promise.resolve(BLK_EINVAL);
    },
    flush() {
      return one(2, 0, null, 0);
    },
  };
}
