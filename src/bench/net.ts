/**
 * `redleaf bench net`: the network path of issue 5 on the NIC model, pktgen backend unpaced
 * (frames are 60 bytes as the driver sees them: 64 on the wire with the FCS).
 *
 * paths   driver  NicCore run in the host (no domain, no crossing): the driver logic's own cost
 *         domain  an app domain -> the NIC driver domain, one crossing per batch
 *         shadow  app -> nic_shadow -> driver (two crossings per batch)
 * cases   rx-64-b{1,32}, tx-64-b{1,32}, l2fwd-64-b{1,32} on every path; nullnet-64-b{1,32}
 *         (l2fwd over nullnet, no device); maglev-64-b32 (65,537-entry table, 1M pktgen flows,
 *         balanced by the NIC's RSS hash; mpps_after_change: the same with one of its 16 backends
 *         removed; mpps_software_hash: hashing each header itself; see its note);
 *         l2fwd-1514-b32 (with gbps); recovery (l2fwd-64-b32 through the shadow, the driver
 *         crashed: frames lost, ms from its death until the reissued call returned, the
 *         throughput with a crash per second against none, and how long the restarted driver
 *         runs slow: see recovery()); node-dgram-64 (Node's dgram
 *         sockets on 127.0.0.1, one process sending and receiving 64-byte datagrams: the same-run
 *         baseline);
 *         call-64-b32 (domain, shadow, nullnet): the host forwards frames through the Net itself
 *         and reports the median time of an RX call that collected a full batch of 32 and of a TX
 *         call that posted and reclaimed 32 — a median per call, so unlike Mpps it holds on a
 *         machine whose other load takes the CPU from the device thread or from us now and then.
 * Each figure is the median of `runs` runs of ~1 s * scale (after a warm-up run); the domain and
 * shadow runs of a case alternate, both paths booted at once, and the shadow row says how it
 * compares (versus: vs_domain, and the lowest and highest ratio of one run to the domain run
 * beside it). `--case PREFIX` runs only the cases
 * whose name starts with PREFIX (on every path they have).
 * JSON field and case names are the (snake_case, as every suite's): a row is
 * {case, path?, mpps | gbps | restart_ms, frames_lost | ...}.
 */
import dgram from 'node:dgram';
import { Kernel } from '../kernel/kernel.js';
import { KERNEL_OWNER } from '../kernel/heap.js';
import { startNic, type NicBackendConfig } from '../devices/nic/index.js';
import type { NicCore } from '../domains/nic/core.js';
import { FrameDeque } from '../domains/nic/deque.js';
import { swapMacs } from '../domains/l2fwd/index.js';
import type { DmaBytes, RRef, RRefArray, RRefDeque } from '../runtime/types.js';
import type { NetApp, NetIo } from '../interfaces/index.js';
import { bootNet, hostIo, hostNicCore, type NetBoot, type NetBootOptions } from '../host/net.js';
import { caseChooser, median, progressBar, runsOf, versus, VERSUS_NOTE, warmupRestarts, type BenchOptions, type ResultRow, type SuiteResult } from './harness.js';

type Mode = 'rx' | 'tx' | 'fwd';
const NAME: Record<Mode, string> = { rx: 'rx', tx: 'tx', fwd: 'l2fwd' };

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

export const caseFilter = true;
const BATCHES = [1, 32] as const;
const MODES: Mode[] = ['rx', 'tx', 'fwd'];
const pathCase = (mode: Mode, batch: number): string => `${NAME[mode]}-64-b${batch}`;
/** The cases run on the driver, domain and shadow paths. */
const PATH_CASES = BATCHES.flatMap((b) => MODES.map((m) => pathCase(m, b)));
/** Every case of the suite, in the order it runs them. */
const CASES = [
  ...PATH_CASES,
  ...BATCHES.map((b) => `nullnet-64-b${b}`),
  'maglev-64-b32',
  'l2fwd-1514-b32',
  'recovery',
  'call-64-b32',
  'node-dgram-64',
];

/**
 * How many slices a run of a path case is cut into, the paths' slices alternating: on these
 * machines the noise moves in bursts shorter than a run, so two paths compared run against run
 * saw different moments (one run's shadow/domain ratio anywhere from 0.47 to 1.28 at tx-64-b1);
 * slice against slice, they see the same ones (0.72–1.00 with ten slices, the medians unchanged:
 * bench/RESULTS.md, session 23).
 */
const SLICES = 10;

/**
 * Mpps of `runs` runs of each fn(ms) -> frames, run by run (after one shorter warm-up run of
 * each). A run of each fn is SLICES slices of ms / SLICES, the fns' slices alternating as runsOf
 * alternates runs (its rounds are the slices here), and its rate is its frames over its slices'
 * time: run i of every fn covers the same stretch of the machine's time.
 */
async function rateRuns(runs: number, ms: number, fns: ((ms: number) => number)[]): Promise<number[][]> {
  for (const fn of fns) fn(Math.min(300, ms));
  const xs = fns.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    const frames = fns.map(() => 0);
    const time = fns.map(() => 0);
    const slice = (j: number) => async (): Promise<number> => {
      await tick();
      const t0 = performance.now();
      frames[j]! += fns[j]!(ms / SLICES);
      time[j]! += performance.now() - t0;
      return 0;
    };
    await runsOf(SLICES, fns.map((_, j) => slice(j)), 0);
    fns.forEach((_, j) => xs[j]!.push(frames[j]! / time[j]! / 1e3));
  }
  return xs;
}
/** Median Mpps of `runs` runs of fn(ms) -> frames, after one shorter warm-up run (rateRuns). */
export const rate = async (runs: number, ms: number, fn: (ms: number) => number): Promise<number> => median((await rateRuns(runs, ms, [fn]))[0]!);

/** A probe's optional ring-size argument as NIC driver configuration (none: the driver's default). */
export function ringConfig(ring: string | undefined): Pick<NetBootOptions, 'driver'> {
  return ring === undefined ? {} : { driver: { rxRing: Number(ring), txRing: Number(ring) } };
}

/** pktgen as the suite's 64-byte cases run it: unpaced, 60-byte frames (64 on the wire), 65,536 flows. */
export const PKTGEN_64: NicBackendConfig = { kind: 'pktgen', pktgen: { frameSize: 60, flows: 65536 } };
/** Backends maglev-64-b32 balances over. */
const MAGLEV_BACKENDS = 16;
/** maglev-64-b32 as the suite boots it: 16 backends, 2^20 pktgen flows (the "at least 1M"). */
export const MAGLEV_64: Pick<NetBootOptions, 'backend' | 'app' | 'appConfig'> = {
  backend: { kind: 'pktgen', pktgen: { frameSize: 60, flows: 1 << 20 } },
  app: 'maglev',
  appConfig: { backends: MAGLEV_BACKENDS },
};

/**
 * `app` forwarding ('fwd', batches of `batch`) for `ms` in runs of at most 500 ms: one synchronous
 * run longer than the driver's 2 s deadline would kill it. Returns frames forwarded.
 */
export function forwardFor(app: NetApp, batch: number, ms: number): number {
  let frames = 0;
  for (let t = ms; t > 0; t -= 500) frames += app.run('fwd', batch, Math.min(500, t));
  return frames;
}

/** NicCore in the host, brought up on a NIC model (by default PKTGEN_64) behind its IOMMU, over kernel-owned buffers. */
export interface HostNic {
  readonly core: NicCore;
  /** A FrameDeque of `capacity` slots holding `buffers` fresh 2 KiB buffers (length 0) of the kernel's. */
  pool(buffers: number, capacity: number): FrameDeque;
  stop(): Promise<void>;
}

export async function hostNic(backend: NicBackendConfig = PKTGEN_64): Promise<HostNic> {
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  const dev = startNic({ phys: kernel.heap.phys, iommu: kernel.heap.iommuTables, backend, queues: 1 });
  const stop = async (): Promise<void> => {
    await dev.stop();
    kernel.shutdown();
  };
  try {
    await dev.ready;
    // The host-linked driver plays the kernel: its IOMMU lets the NIC reach the kernel's memory,
    // so the driver path pays the same DMA checks as a driver domain.
    dev.attach(KERNEL_OWNER);
    const alloc = (n: number, a?: number): DmaBytes => kernel.kit.allocBytes(KERNEL_OWNER, n, a) as unknown as DmaBytes;
    const core = hostNicCore(dev.bar0, alloc, { promiscuous: true });
    core.init();
    const pool = (buffers: number, capacity: number): FrameDeque => {
      const d = new FrameDeque(capacity);
      for (let i = 0; i < buffers; i++) d.push(alloc(2048), 0);
      return d;
    };
    return { core, pool, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The driver path: NicCore in the host over kernel-owned exchange-heap buffers. */
async function driverPath(opts: BenchOptions, ms: number, rows: ResultRow[], bar: { tick(l?: string): void }, wants: (c: string) => boolean): Promise<void> {
  const nic = await hostNic();
  const core = nic.core;
  try {
    const pool = nic.pool(2048, 4096);
    for (const batch of BATCHES) {
      const free = new FrameDeque(batch);
      const filled = new FrameDeque(batch);
      const frames = new FrameDeque(batch);
      const done = new FrameDeque(batch);
      for (const mode of MODES) {
        if (!wants(pathCase(mode, batch))) continue;
        const loop = (t: number): number => {
          const end = performance.now() + t;
          let n = 0;
          while (performance.now() < end) {
            for (let k = 0; k < 64; k++) {
              if (mode !== 'tx') {
                while (free.length < batch && pool.length > 0) free.push(pool.pop()!, 0);
                core.rxSubmitAndPoll(0, free, filled);
                while (filled.length > 0) {
                  const len = filled.frontLen();
                  const b = filled.pop()!;
                  if (mode === 'rx' || frames.length === batch) {
                    pool.push(b, 0);
                    if (mode === 'rx') n++;
                    continue;
                  }
                  frames.push(b, swapMacs(b as RRefArray<number>, len));
                  n++;
                }
              }
              if (mode !== 'rx') {
                if (mode === 'tx') while (frames.length < batch && pool.length > 0) frames.push(pool.pop()!, 60);
                core.txSubmitAndPoll(0, frames, done);
                while (done.length > 0) {
                  pool.push(done.pop()!, 0);
                  if (mode === 'tx') n++;
                }
              }
            }
          }
          return n;
        };
        rows.push({ case: pathCase(mode, batch), path: 'driver', mpps: round(await rate(opts.runs, ms, loop)) });
        bar.tick(`driver ${mode} b${batch}`);
      }
      // Give the buffers back to the pool before the next batch size.
      for (const q of [free, filled, frames, done]) while (q.length > 0) pool.push(q.pop()!, 0);
    }
  } finally {
    await nic.stop();
  }
}

const round = (x: number, d = 3): number => Number(x.toFixed(d));

/** Each boot's app running `mode` at `batch`, their runs alternating (rateRuns): per boot, the Mpps of each run. */
function appRates(boots: readonly NetBoot[], opts: BenchOptions, ms: number, mode: Mode, batch: number): Promise<number[][]> {
  return rateRuns(opts.runs, ms, boots.map((b) => (t: number) => b.app!.run(mode, batch, t)));
}

async function appRate(boot: NetBoot, opts: BenchOptions, ms: number, mode: Mode, batch: number): Promise<number> {
  return rate(opts.runs, ms, (t) => boot.app!.run(mode, batch, t));
}

/** One round of the host forwarding through a Net at batch 32: each call's time (ms) and what it moved. */
export interface HostRound {
  rxMs: number;
  txMs: number;
  /** Buffers the RX call collected, frames the TX call was given, those it left, buffers it gave back. */
  got: number;
  sent: number;
  unsent: number;
  done: number;
}

/**
 * The host as a Net caller that forwards (l2fwd's loop without a domain around it): a pool of
 * 2048 buffers of the kernel's, an RX and a TX NetIo of batch 32; round() posts free buffers,
 * collects, hands what it collected to TX as 60-byte frames and takes back what TX completed,
 * timing each call. close() takes every buffer back (the Net's through drain) and frees them.
 */
export function hostForwarder(boot: NetBoot): { round(): HostRound; close(): void } {
  const BATCH = 32;
  const k = boot.kernel.kit;
  const net = boot.net;
  type Deque = RRefDeque<RRefArray<number>>;
  const newIo = (): RRef<NetIo> => hostIo(boot.kernel, BATCH);
  const pool = k.allocDeque(0, 4096) as unknown as Deque;
  for (let i = 0; i < 2048; i++) pool.push(k.allocBytes(0, 2048) as unknown as RRefArray<number>);
  const lens = new Uint8Array(BATCH * 4);
  const lv = new DataView(lens.buffer);
  for (let i = 0; i < BATCH; i++) lv.setUint32(i * 4, 60, true);
  let rio = newIo();
  let tio = newIo();
  const round = (): HostRound => {
    (rio.pkts as Deque).moveFrom(pool, BATCH - rio.pkts!.length);
    let t0 = performance.now();
    rio = net.rxSubmitAndPoll(0, rio);
    const rxMs = performance.now() - t0;
    const co = rio.collect as Deque;
    const got = co.length;
    const tpk = tio.pkts as Deque;
    const m0 = tpk.length;
    const moved = tpk.moveFrom(co, BATCH - m0);
    if (moved > 0) tio.pktLens!.write(m0 * 4, lens, 0, moved * 4);
    pool.moveFrom(co, co.length);
    const sent = tpk.length;
    t0 = performance.now();
    tio = net.txSubmitAndPoll(0, tio);
    const txMs = performance.now() - t0;
    const back = tio.collect as Deque;
    const done = back.length;
    pool.moveFrom(back, done);
    return { rxMs, txMs, got, sent, unsent: tio.pkts!.length, done };
  };
  const close = (): void => {
    // Everything back to the pool (the driver's buffers come back with drain), then freed.
    for (const io of [rio, tio]) {
      for (const d of [io.pkts, io.collect] as Deque[]) pool.moveFrom(d, d.length);
      io.drop();
    }
    const d = newIo();
    d.collect = k.allocDeque(0, 4096) as never;
    d.collectLens = k.allocArray(0, 'u32', 4096) as never;
    const back = net.drain(d);
    pool.moveFrom(back.collect as Deque, back.collect!.length);
    back.drop();
    pool.drop();
  };
  return { round, close };
}

/** Median µs of a full-batch RX call and TX call into `net` (see call-64-b32 above), over ~ms. */
function callCost(boot: NetBoot, ms: number): { rxUs: number; txUs: number; calls: number } {
  const fwd = hostForwarder(boot);
  const rx: number[] = [];
  const tx: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const r = fwd.round();
    if (r.got === 32) rx.push(r.rxMs);
    if (r.sent === 32 && r.unsent === 0 && r.done === 32) tx.push(r.txMs);
  }
  fwd.close();
  return { rxUs: median(rx) * 1000, txUs: median(tx) * 1000, calls: rx.length + tx.length };
}

async function udpBaseline(opts: BenchOptions): Promise<{ mpps: number; sent: number; received: number }> {
  const maxCount = Math.max(10_000, Math.round(300_000 * opts.scale));
  const maxMs = Math.max(300, 2000 * opts.scale);
  const rx = dgram.createSocket('udp4');
  const tx = dgram.createSocket('udp4');
  let received = 0;
  rx.on('message', () => {
    received++;
  });
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
  const port = rx.address().port;
  const payload = Buffer.alloc(64 - 42); // 64-byte frame = 14 Ethernet + 20 IPv4 + 8 UDP + 22 payload
  const t0 = performance.now();
  let sent = 0;
  try {
    while (sent < maxCount && performance.now() - t0 < maxMs) {
      let inFlight = 0;
      await new Promise<void>((resolve) => {
        for (let i = 0; i < 64; i++) {
          inFlight++;
          tx.send(payload, port, '127.0.0.1', () => {
            if (--inFlight === 0) resolve();
          });
        }
      });
      sent += 64;
      // Keep at most a socket buffer's worth in flight, so the baseline measures delivery, not drops.
      const wait = performance.now() + 50;
      while (received < sent - 256 && performance.now() < wait) await tick();
    }
    const until = performance.now() + 200;
    while (received < sent && performance.now() < until) await tick();
    const secs = (performance.now() - t0) / 1000;
    return { mpps: received / secs / 1e6, sent, received };
  } finally {
    rx.close();
    tx.close();
  }
}

/** recovery's windows: a second, times opts.scale, at least 100 ms; the fault is armed a tenth into a crash window. */
const recoveryWindowMs = (opts: BenchOptions): number => Math.max(100, 1000 * opts.scale);
const CRASH_AT = 0.1;
/** The windows run in chunks of CHUNK_MS; back to speed is BACK_CHUNKS chunks in a row at 90% of a quiet one. */
const CHUNK_MS = 10;
const BACK_CHUNKS = 3;
/** How long after a crash (or the same point of a quiet window) crash_cost_ms looks. */
const COST_SPAN_MS = 300;
/**
 * Restarts before the measured windows, so that they measure the steady state of a crash a
 * second: each of a process's first restarts deoptimizes code that V8 then re-optimizes on its
 * background threads, which on a 2-vCPU machine take the NIC model thread's CPU for hundreds of
 * ms (probes/restart-cpu.js: ~500 ms of background CPU after the first, 100–200 after the next
 * three, 10–30 from the fifth on).
 */
const WARMUP_RESTARTS = 5;
/**
 * Traffic before the first crash, in recovery windows: two, 2 s at scale 1. A freshly booted
 * process compiles its hot code on V8's background thread for ~0.6–1 s of traffic, and on two
 * cores that thread, the NIC model's and the kernel's share them: a driver crashing then waited
 * for the CPU besides its own recovery (`perf sched` showed the NIC model thread queued behind V8's
 * for ~3 ms while it was to acknowledge the reset; bench/RESULTS.md, session 25). The first
 * restart is then measured as one in a running system; `restart-times.js 2 300` shows the other.
 */
const PRE_CRASH_WINDOWS = 2;

/** One of recovery's windows: frames and ms per chunk, and what the shadow reported for it. */
interface RecoveryWindow {
  frames: number[];
  ms: number[];
  lost: number;
  restartMs: number;
}

/**
 * The recovery row: l2fwd-64-b32 through the NIC shadow on pktgen, a driver fault armed at its
 * third call from then (so it dies inside a call, under traffic, holding buffers). Besides the
 * issue's restart_ms and frames_lost (medians over the crashes), the throughput with a crash per
 * second (ARCHITECTURE §5), as bench nvme measures it: interleaved pairs of windows without and
 * with one crash each, the order alternating, so that the machine's drift hits both alike.
 */
async function recovery(opts: BenchOptions): Promise<ResultRow> {
  const boot = await bootNet({ backend: PKTGEN_64, shadow: true, app: 'l2fwd' });
  try {
    const app = boot.app!;
    const windowMs = recoveryWindowMs(opts);
    const chunks = Math.round(windowMs / CHUNK_MS);
    const crashChunk = Math.round(chunks * CRASH_AT);
    /** One window of `chunks` chunks, a fault armed before chunk crashChunk if `crash`: frames per chunk, its stats. */
    const runWindow = (crash: boolean): RecoveryWindow => {
      const frames: number[] = [];
      const ms: number[] = [];
      const before = boot.netStats();
      for (let c = 0; c < chunks; c++) {
        if (crash && c === crashChunk) boot.kernel.injectFault(boot.driverName!, { afterCalls: 3 });
        const t0 = performance.now();
        frames.push(app.run('fwd', 32, CHUNK_MS));
        ms.push(performance.now() - t0);
      }
      const after = boot.netStats();
      const restarts = after.restarts! - before.restarts!;
      if (restarts !== (crash ? 1 : 0)) throw new Error(`recovery: expected ${crash ? 'one restart' : 'no restart'} in the window, saw ${restarts}`);
      return { frames, ms, lost: after.framesLost! - before.framesLost!, restartMs: after.lastRestartMs! };
    };
    forwardFor(app, 32, PRE_CRASH_WINDOWS * windowMs);
    // The process's first restarts are its slow ones: reported (first_restart_ms, warmup_restarts_ms), not in the medians.
    const warmup = Array.from({ length: WARMUP_RESTARTS }, () => runWindow(true).restartMs);
    const quiet: RecoveryWindow[] = [];
    const crashy: RecoveryWindow[] = [];
    for (let p = 0; p < Math.max(3, opts.runs); p++) {
      for (const crash of p % 2 === 0 ? [false, true] : [true, false]) (crash ? crashy : quiet).push(runWindow(crash));
      await tick();
    }
    const mpps = (ws: RecoveryWindow[]): number => sum(ws.flatMap((w) => w.frames)) / sum(ws.flatMap((w) => w.ms)) / 1e3;
    const chunkRate = (w: RecoveryWindow, c: number): number => w.frames[c]! / w.ms[c]!;
    const normal = median(quiet.flatMap((w) => w.frames.map((_, c) => chunkRate(w, c))));
    /** ms from the fault's arming to the first of BACK_CHUNKS chunks in a row at 90% of normal (not back: the rest of the window). */
    const backToSpeed = (w: RecoveryWindow): number => {
      for (let c = crashChunk; c + BACK_CHUNKS <= chunks; c++) {
        let ok = true;
        for (let k = c; k < c + BACK_CHUNKS && ok; k++) ok = chunkRate(w, k) >= 0.9 * normal;
        if (ok) return sum(w.ms.slice(crashChunk, c));
      }
      return sum(w.ms.slice(crashChunk));
    };
    /**
     * Time lost in the COST_SPAN_MS from the fault's arming: what those chunks took less what their
     * frames take at the normal rate. A crash window's, less a quiet window's at the same chunks,
     * is a crash's cost (crash_cost_ms / 10: percent lost at one crash a second), as bench nvme
     * reports it: steadier on a loaded machine than the windows' totals.
     */
    const span = Math.min(chunks - crashChunk, Math.round(COST_SPAN_MS / CHUNK_MS));
    const excess = (w: RecoveryWindow): number => {
      let ms = 0;
      let frames = 0;
      for (let c = crashChunk; c < crashChunk + span; c++) {
        ms += w.ms[c]!;
        frames += w.frames[c]!;
      }
      return ms - frames / normal;
    };
    const noCrash = mpps(quiet);
    const withCrash = mpps(crashy);
    return {
      case: 'recovery',
      path: 'shadow',
      restart_ms: round(median(crashy.map((w) => w.restartMs)), 2),
      ...warmupRestarts(warmup),
      frames_lost: median(crashy.map((w) => w.lost)),
      rpc_errors: boot.appStats()!.rpcErrors!,
      mpps_no_crash: round(noCrash),
      mpps_crash_per_s: round(withCrash),
      crash_per_s_ratio: round(withCrash / noCrash),
      back_to_speed_ms: round(median(crashy.map(backToSpeed)), 1),
      crash_cost_ms: round(median(crashy.map(excess)) - median(quiet.map(excess)), 1),
    };
  } finally {
    await boot.stop();
  }
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

export async function run(opts: BenchOptions): Promise<SuiteResult> {
  const ms = Math.max(50, 1000 * opts.scale);
  const rows: ResultRow[] = [];
  const notes: string[] = [];
  const wants = caseChooser('net', CASES, opts.only);
  const chosen = CASES.filter(wants);
  const paths = PATH_CASES.some(wants);
  // Progress: three ticks per driver/domain/shadow case, three per call-64 (one per path), one per other case.
  const bar = progressBar(opts, 'net', chosen.reduce((n, c) => n + (c.startsWith('call') || PATH_CASES.includes(c) ? 3 : 1), 0));
  if (paths) await driverPath(opts, ms, rows, bar, wants);
  if (paths) {
    // Both paths booted at once (an idle NIC model parks its thread), their runs interleaved.
    const boots: NetBoot[] = [];
    try {
      for (const shadow of [false, true]) boots.push(await bootNet({ backend: PKTGEN_64, shadow, app: 'l2fwd' }));
      for (const batch of BATCHES) {
        for (const mode of MODES) {
          if (!wants(pathCase(mode, batch))) continue;
          const [domain, shadow] = await appRates(boots, opts, ms, mode, batch);
          rows.push({ case: pathCase(mode, batch), path: 'domain', mpps: round(median(domain!)) });
          rows.push({ case: pathCase(mode, batch), path: 'shadow', mpps: round(median(shadow!)), ...versus(domain!, shadow!) });
          bar.tick(`domain+shadow ${mode} b${batch}`);
          bar.tick();
        }
      }
    } finally {
      for (const b of boots) await b.stop();
    }
  }
  if (chosen.some((c) => c.startsWith('nullnet'))) {
    const boot = await bootNet({ backend: 'nullnet', app: 'l2fwd', frameSize: 64 });
    try {
      for (const batch of BATCHES) {
        if (!wants(`nullnet-64-b${batch}`)) continue;
        rows.push({ case: `nullnet-64-b${batch}`, path: 'domain', mpps: round(await appRate(boot, opts, ms, 'fwd', batch)) });
        bar.tick(`nullnet b${batch}`);
      }
    } finally {
      await boot.stop();
    }
  }
  if (wants('maglev-64-b32')) {
    // Beside it, the same balancer hashing every frame's header itself (rxHash 'software', as it
    // does on a Net that reports no RSS hash), its runs alternating with the first's in slices,
    // as the domain and shadow paths' do: on this VM, runs one after the other saw different
    // phases (sequential invocations of one build: 2.8 to 4.7 Mpps, bench/RESULTS.md session 35).
    const boots = [await bootNet(MAGLEV_64)];
    try {
      boots.push(await bootNet({ ...MAGLEV_64, appConfig: { ...MAGLEV_64.appConfig, rxHash: 'software' } }));
      const boot = boots[0]!;
      // One pass over the 1M flows first, so the figures are the steady state: every flow tracked.
      const passMs = Math.max(300, 3000 * opts.scale);
      for (const b of boots) forwardFor(b.app!, 32, passMs);
      const [byNic, bySoftware] = await appRates(boots, opts, ms, 'fwd', 32);
      const mpps = median(byNic!);
      const flows = boot.appStats()!.flows;
      // Then a backend-set change (NetApp.backends: one of the 16 removed): the flows through the
      // table entries it changed (~7%) take maglev's flow cache from then on, which the steady
      // state above never needs (maglev.ts: connection tracking is lazy). A pass, then the same.
      if (boot.app!.backends(MAGLEV_BACKENDS - 1) !== MAGLEV_BACKENDS - 1) throw new Error('maglev refused a backend-set change');
      forwardFor(boot.app!, 32, passMs);
      const after = await appRate(boot, opts, ms, 'fwd', 32);
      rows.push({ case: 'maglev-64-b32', path: 'domain', mpps: round(mpps), flows, mpps_after_change: round(after), mpps_software_hash: round(median(bySoftware!)) });
      bar.tick('maglev');
    } finally {
      for (const b of boots) await b.stop();
    }
  }
  if (wants('l2fwd-1514-b32')) {
    const boot = await bootNet({ backend: { kind: 'pktgen', pktgen: { frameSize: 1514, flows: 1024 } }, app: 'l2fwd' });
    try {
      const mpps = await appRate(boot, opts, ms, 'fwd', 32);
      rows.push({ case: 'l2fwd-1514-b32', path: 'domain', mpps: round(mpps), gbps: round((mpps * 1e6 * 1514 * 8) / 1e9, 2) });
      bar.tick('l2fwd 1514');
    } finally {
      await boot.stop();
    }
  }
  if (wants('recovery')) {
    rows.push(await recovery(opts));
    bar.tick('recovery');
  }
  for (const path of wants('call-64-b32') ? (['domain', 'shadow', 'nullnet'] as const) : []) {
    const boot = await bootNet({ backend: path === 'nullnet' ? 'nullnet' : PKTGEN_64, shadow: path === 'shadow', app: null });
    try {
      callCost(boot, Math.min(300, ms)); // warm-up
      const c = callCost(boot, ms);
      rows.push({ case: 'call-64-b32', path, rx_call_us: round(c.rxUs, 2), tx_call_us: round(c.txUs, 2), ns_per_frame: round(((c.rxUs + c.txUs) * 1000) / 32, 1), calls: c.calls });
      bar.tick(`call ${path}`);
    } finally {
      await boot.stop();
    }
  }
  if (wants('node-dgram-64')) {
    const u = await udpBaseline(opts);
    rows.push({ case: 'node-dgram-64', mpps: round(u.mpps, 4) });
    notes.push(`node-dgram-64: node:dgram on 127.0.0.1, ${u.sent} datagrams sent, ${u.received} received, one process`);
    bar.tick('node-dgram');
  }
  bar.stop();
  // The notes of the cases that ran.
  if (chosen.some((c) => c !== 'node-dgram-64')) {
    notes.push(`pktgen unpaced, 60-byte frames (64 on the wire); ${opts.runs} runs of ${ms} ms, median; 10 GbE line rate is 14.88 Mpps`);
  }
  if (paths) notes.push(VERSUS_NOTE);
  if (wants('recovery')) {
    notes.push(
      `recovery (l2fwd-64-b32 through the shadow): frames_lost = the buffers the dead driver held (RX posted, TX not reclaimed), all taken back by the shadow: an upper bound; restart_ms = the driver dying (its termination by the kernel included) -> the reissued call returned, the median over the measured crashes; first_restart_ms / warmup_restarts_ms = the same for the process's first ${WARMUP_RESTARTS} restarts, in order, before them, the first after ${PRE_CRASH_WINDOWS * recoveryWindowMs(opts)} ms of traffic (the first ones are slow: the recovery code still cold, V8 re-optimizing what the first crash deoptimized on the same cores); rpc_errors = errors the app saw`,
      `recovery: mpps_no_crash / mpps_crash_per_s over interleaved pairs of ${recoveryWindowMs(opts)} ms windows without and with one driver crash each, after ${WARMUP_RESTARTS} restarts (crash_per_s_ratio: with / without); back_to_speed_ms = crash armed -> the first of ${BACK_CHUNKS} ${CHUNK_MS} ms chunks in a row at 90% of a quiet chunk's median rate (the rest of the window if none); crash_cost_ms = median time lost in the ${COST_SPAN_MS} ms after a crash less the same in quiet windows (crash_cost_ms / 10: percent lost at one crash a second; steadier than the window totals)`,
    );
  }
  if (wants('maglev-64-b32')) {
    notes.push(`maglev-64-b32: the balancer takes each frame's flow hash from the NIC (its RSS hash, in the RX write-back); flows = flows tracked; mpps_after_change = the same measurement after one of its ${MAGLEV_BACKENDS} backends was removed and one more pass over the flows (the flows through the table entries that changed then take the flow cache); mpps_software_hash = the same balancer reading and hashing every frame's header itself (rxHash 'software'), booted beside the first, their runs alternating`);
  }
  if (wants('call-64-b32')) {
    notes.push('call-64-b32: the host as the caller; median time of an RX call that collected 32 frames and of a TX call that posted and reclaimed 32; ns_per_frame = (rx + tx) / 32');
  }
  return { suite: 'net', node: process.version, results: rows, notes };
}
