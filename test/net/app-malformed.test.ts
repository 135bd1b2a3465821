/**
 * The packet-app engine (src/runtime/netapp.ts) and a Net that answers with a malformed NetIo: a
 * live, faulty driver, or one a call reached past the NIC shadow. A host-side Net between the app
 * and the NIC driver on loopback corrupts a few answers of one direction (fields set to null, a
 * collect holding more than the call could append, a NetIo of another shape, a negative status,
 * lying counts and lengths); the app must not panic (it would lose every buffer it holds): it
 * counts an answer it cannot use in rpcErrors, takes back what of it it can reach, carries on
 * with a NetIo of its own, and keeps its pool's size — less only the buffers the faulty Net
 * itself kept or freed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNet } from '../../src/host/net.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { artifactPath } from '../../src/kernel/paths.js';
import { NET_EINVAL, type Net, type NetApp, type NetAppStats, type NetIo } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { between, runUntil } from './helpers.js';

type Buf = RRefArray<number>;
type Deque = RRefDeque<Buf>;

/** Twice the RX ring: the ring never holds the whole pool, so a seed always finds buffers. */
const POOL = 256;
const BATCH = 32;

/** What a corruption may use: allocations owned by the app (they move to it with the answer). */
interface Ctx { appId: number; kernel: Kernel }

/** The answer the app gets, the app's buffers the corruption took (freed) and the buffers it added. */
interface Corrupted { r: RRef<NetIo>; taken: number; extra?: number }

/**
 * One kind of malformed answer: `corrupt` changes (or replaces) the answer `r` and returns what
 * the app gets, with the buffers the corruption took from it (freed with what it set to null or
 * dropped); null leaves the answer alone (no frames to corrupt yet). `counted`: whether the app
 * must count it as an error.
 */
interface Fault {
  name: string;
  app: 'l2fwd' | 'maglev';
  rx: boolean;
  counted: boolean;
  /** Answers corrupted (default 3). */
  answers?: number;
  corrupt: (r: RRef<NetIo>, c: Ctx) => Corrupted | null;
}

const len = (d: unknown): number => (d as Deque | null)?.length ?? 0;

/** A NetIo of the app's with deques of `pcap` and `ccap`, holding `r`'s collected buffers (their lengths kept); `r` dropped. */
function reshape(r: RRef<NetIo>, c: Ctx, pcap: number, ccap: number, extra: number): Corrupted {
  const k = c.kernel.kit;
  const io = k.allocStruct(c.appId, 'NetIo') as unknown as RRef<NetIo>;
  io.pkts = k.allocDeque(c.appId, pcap) as unknown as Deque;
  io.pktLens = k.allocArray(c.appId, 'u32', pcap) as unknown as Buf;
  io.collect = k.allocDeque(c.appId, ccap) as unknown as Deque;
  io.collectLens = k.allocArray(c.appId, 'u32', ccap) as unknown as Buf;
  const co = r.collect as Deque;
  const n = co.length;
  const pk = r.pkts as Deque;
  (io.pkts as Deque).moveFrom(pk, pk.length);
  for (let i = 0; i < len(io.pkts); i++) io.pktLens!.setU32(i * 4, r.pktLens?.getU32(i * 4) ?? 0);
  for (let i = 0; i < n; i++) io.collectLens!.setU32(i * 4, r.collectLens!.getU32(i * 4));
  (io.collect as Deque).moveFrom(co, n);
  for (let i = 0; i < extra; i++) {
    (io.collect as Deque).push(k.allocBytes(c.appId, 2048) as unknown as Buf);
    io.collectLens!.setU32((n + i) * 4, 60);
  }
  const taken = len(r.pkts);
  r.drop();
  return { r: io, taken, extra };
}

/**
 * An answer of one direction (`rx`) with `field` set to null: the buffers of a deque set to null
 * are freed with it (taken from the app).
 */
const nulled = (rx: boolean, field: 'pkts' | 'pktLens' | 'collect' | 'collectLens'): Fault => ({
  name: `${rx ? 'an RX' : 'a TX'} answer without ${field}`, app: 'l2fwd', rx, counted: true,
  corrupt: (r) => {
    const taken = field === 'pkts' || field === 'collect' ? len(r[field]) : 0;
    r[field] = null;
    return { r, taken };
  },
});

const faults: Fault[] = [
  nulled(true, 'collect'),
  nulled(true, 'collectLens'),
  nulled(true, 'pkts'),
  nulled(false, 'pkts'),
  nulled(false, 'pktLens'),
  nulled(false, 'collect'),
  { name: 'an RX answer with a negative status', app: 'l2fwd', rx: true, counted: true, corrupt: (r) => {
    r.status = NET_EINVAL;
    return { r, taken: 0 };
  } },
  {
    // Another NetIo, whose collect holds more buffers than the app's batch (and than it has).
    name: 'an RX answer whose collect holds more than a batch', app: 'l2fwd', rx: true, counted: true,
    corrupt: (r, c) => reshape(r, c, BATCH, 4 * BATCH, 2 * BATCH),
  },
  {
    name: 'an RX answer whose collectLens is shorter than its collect', app: 'l2fwd', rx: true, counted: true,
    corrupt: (r, c) => {
      if (len(r.collect) < 2) return null;
      r.collectLens = c.kernel.kit.allocArray(c.appId, 'u32', 1) as never;
      return { r, taken: 0 };
    },
  },
  {
    name: 'an RX answer whose collectInfo is shorter than its collect', app: 'maglev', rx: true, counted: true,
    corrupt: (r, c) => {
      if (len(r.collect) < 2) return null;
      r.collectInfo = c.kernel.kit.allocArray(c.appId, 'u32', 2) as never;
      return { r, taken: 0 };
    },
  },
  {
    // As the NIC shadow answers when a faulty driver freed the call's NetIo: a fresh one with
    // room for what it held. A NetIo the Net made is its to make: not an error, but the app's
    // next batch would not fit it.
    name: 'a TX answer in a NetIo of other capacities', app: 'l2fwd', rx: false, counted: false,
    corrupt: (r, c) => reshape(r, c, 2, BATCH, 0),
  },
  {
    // The app reads neither: what came back is what its deques hold.
    name: 'an RX answer whose count, held and restarts lie', app: 'l2fwd', rx: true, counted: false,
    corrupt: (r) => {
      r.count = 0xffffffff;
      r.held = 0xffffffff;
      r.restarts = 12345;
      return { r, taken: 0 };
    },
  },
  {
    // Enough of them that the frames the NIC refuses (it cannot send more than a buffer holds)
    // would fill the TX NetIo, if the app kept them there.
    name: 'an RX answer whose lengths are over the buffer size', app: 'l2fwd', rx: true, counted: false, answers: 12,
    corrupt: (r) => {
      const n = len(r.collect);
      if (n === 0) return null;
      for (let i = 0; i < n; i++) r.collectLens!.setU32(i * 4, 5000);
      return { r, taken: 0 };
    },
  },
];

/**
 * The Net `inner()` with answers of one direction, from `from` answers on, corrupted by `fault`
 * until `left.n` reaches 0 (`taken`: the buffers the corruptions took from the app).
 */
function corrupting(inner: () => Net, fault: Fault, ctx: () => Ctx, st: { armed: boolean; left: number; taken: number; extra: number }): Net {
  const wrap = (r: RRef<NetIo>): RRef<NetIo> => {
    if (!st.armed || st.left === 0) return r;
    const out = fault.corrupt(r, ctx());
    if (out === null) return r;
    st.left--;
    st.taken += out.taken;
    st.extra += out.extra ?? 0;
    return out.r;
  };
  return between(inner, {
    rxSubmitAndPoll: (q, io) => {
      const r = inner().rxSubmitAndPoll(q, io);
      return fault.rx ? wrap(r) : r;
    },
    txSubmitAndPoll: (q, io) => {
      const r = inner().txSubmitAndPoll(q, io);
      return fault.rx ? r : wrap(r);
    },
  });
}

for (const fault of faults) {
  test(`${fault.app} survives ${fault.name}: ${fault.counted ? 'counted, ' : ''}the traffic carries on, no buffer it can reach lost`, { timeout: 120_000 }, async () => {
    const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
    const boot = await bootNet({ kernel, backend: { kind: 'loopback' }, shadow: false, driver: { rxRing: 128, txRing: 256 } });
    try {
      const st = { armed: false, left: fault.answers ?? 3, taken: 0, extra: 0 };
      let driver: Net | null = null;
      const asApp = (): Net => (driver ??= kernel.bind<Net>(boot.netName, kernel.get(fault.app)!));
      const ctx = (): Ctx => ({ kernel, appId: kernel.get(fault.app)!.id });
      const config: Record<string, number> = fault.app === 'maglev' ? { pool: POOL, backends: 4, flowSlots: 1 << 10 } : { pool: POOL };
      kernel.load(artifactPath(fault.app), { imports: [{ object: corrupting(asApp, fault, ctx, st) }], config });
      const app = kernel.bind<NetApp>(fault.app);
      const stats = (): NetAppStats => app.stats(kernel.kit.allocStruct(0, 'NetAppStats') as unknown as RRef<NetAppStats>);
      assert.equal(app.seed(64, 100), 64);
      assert.ok(runUntil(app, 'fwd', (f) => f > 300).frames > 300, 'the loop runs');
      st.armed = true;
      // A corrupted answer may take the loop's frames with it: a few more are seeded until all
      // the corruptions happened.
      const t0 = Date.now();
      while (st.left > 0 && Date.now() - t0 < 30_000) {
        app.seed(8, 100);
        app.run('fwd', BATCH, 20);
      }
      assert.equal(st.left, 0, 'every corruption happened');
      assert.equal(kernel.get(fault.app)!.faults, 0, 'the app did not panic');
      assert.equal(stats().rpcErrors, fault.counted ? (fault.answers ?? 3) : 0, 'each malformed answer counted once');
      // Frames of the loop may have gone with the malformed answers: a new seed, and on it goes.
      assert.equal(app.seed(32, 100), 32, 'the app has buffers to seed with');
      const after = runUntil(app, 'fwd', (f) => f > 300);
      assert.ok(after.frames > 300, `the traffic carries on: ${after.frames} frames`);
      // Buffers the Net handed it beyond its pool are freed: the app keeps at most its pool.
      assert.equal(app.shutdown(), Math.min(POOL, POOL - st.taken + st.extra), `every buffer the Net left the app came back (${st.taken} taken by the corruptions, ${st.extra} added)`);
      assert.equal(kernel.get(fault.app)!.faults, 0, 'the app did not panic');
    } finally {
      await boot.stop();
      kernel.shutdown();
    }
  });
}
