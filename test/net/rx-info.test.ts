/**
 * What the NIC reports of each received frame (NetIo.collectInfo: the 82599's RX write-back dwords
 * 0 and 1, its packet and RSS types and its RSS hash): the NIC driver domain hands it to a caller
 * that asks, nullnet says it has none, and maglev balances by it — every frame to the backend of
 * the NIC's hash of its flow, with no header read — and copes with a NetIo that comes back
 * without it (a faulty Net's).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNet, hostIo } from '../../src/host/net.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { artifactPath } from '../../src/kernel/paths.js';
import { toeplitz } from '../../src/devices/nic/rss.js';
import { Maglev, flowKey } from '../../src/domains/maglev/maglev.js';
import {
  NET_EINVAL, NET_RSS_IPV4, NET_RSS_TCP_IPV4, NET_RSS_TYPE_MASK, NET_RSS_UDP_IPV4,
  type Net, type NetApp, type NetAppStats, type NetLink,
} from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { between, runUntil } from './helpers.js';
import { TEST_ARTIFACTS } from '../kernel/helpers.js';
import { join } from 'node:path';

type Buf = RRefArray<number>;
const NIC_MAC = [2, 0, 0, 0, 0, 1];

/** A host-owned u32 array of n entries, for a NetIo's collectInfo. */
const infoArray = (kernel: Kernel, n: number): RRefArray<number> => kernel.kit.allocArray(0, 'u32', n) as unknown as RRefArray<number>;

interface Frame { what: string; bytes: Uint8Array; rss: number; hash: number }

/** An Ethernet frame of 60 bytes to the NIC: IPv4 (or `ethertype`) from `src` to `dst`, `proto`, ports at 34. */
function frame(o: { src: number; dst: number; proto: number; sport: number; dport: number; ethertype?: number; fragment?: number }): Uint8Array {
  const f = new Uint8Array(60);
  const v = new DataView(f.buffer);
  f.set(NIC_MAC, 0);
  f.set([2, 0, 0, 0, 0, 0x22], 6);
  v.setUint16(12, o.ethertype ?? 0x0800);
  f[14] = 0x45;
  v.setUint16(16, 46);
  v.setUint16(20, o.fragment ?? 0);
  f[22] = 64;
  f[23] = o.proto;
  v.setUint32(26, o.src);
  v.setUint32(30, o.dst);
  v.setUint16(34, o.sport);
  v.setUint16(36, o.dport);
  return f;
}

/** Frames of each kind the RSS hash tells apart, with the RSS type and hash the NIC must report. */
function frames(): Frame[] {
  const t = { src: 0x0a000001, dst: 0x0a010001, sport: 4321, dport: 80 };
  const withPorts = toeplitz(t.src, t.dst, t.sport, t.dport, true);
  const addrs = toeplitz(t.src, t.dst, 0, 0, false);
  return [
    { what: 'UDP', bytes: frame({ ...t, proto: 17 }), rss: NET_RSS_UDP_IPV4, hash: withPorts },
    { what: 'TCP', bytes: frame({ ...t, proto: 6 }), rss: NET_RSS_TCP_IPV4, hash: withPorts },
    { what: 'ICMP', bytes: frame({ ...t, proto: 1 }), rss: NET_RSS_IPV4, hash: addrs },
    { what: 'a UDP fragment', bytes: frame({ ...t, proto: 17, fragment: 0x2000 }), rss: NET_RSS_IPV4, hash: addrs },
    { what: 'another flow', bytes: frame({ ...t, src: 0x0a000002, proto: 17 }), rss: NET_RSS_UDP_IPV4, hash: toeplitz(0x0a000002, t.dst, t.sport, t.dport, true) },
    { what: 'IPv6', bytes: frame({ ...t, proto: 17, ethertype: 0x86dd }), rss: 0, hash: 0 },
  ];
}

test('the NIC driver reports each received frame\'s RSS type and hash in collectInfo, for the buffers its call appended', async () => {
  const boot = await bootNet({ backend: { kind: 'loopback' }, app: null });
  const { kernel, net } = boot;
  try {
    const link = net.link(kernel.kit.allocStruct(0, 'NetLink') as unknown as RRef<NetLink>);
    assert.equal(link.rxInfo, 1, 'the driver says it reports RX information');
    const sent = frames();
    const pool: Buf[] = [];
    for (let i = 0; i < 64; i++) pool.push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    let rx = hostIo(kernel, 32);
    rx.collectInfo = infoArray(kernel, 64);
    // One buffer already in collect, its entry a sentinel: the call appends after it and leaves it.
    (rx.collect as RRefDeque<Buf>).push(pool.pop()!);
    rx.collectInfo!.setU32(0, 0xdeadbeef);
    rx.collectInfo!.setU32(4, 0xfeedface);
    const pk = rx.pkts as RRefDeque<Buf>;
    while (pk.length < 16) pk.push(pool.pop()!);
    rx = net.rxSubmitAndPoll(0, rx);
    assert.equal(rx.status, 0);
    let tx = hostIo(kernel, 32);
    sent.forEach((f, i) => {
      const b = pool.pop()!;
      b.write(0, f.bytes);
      (tx.pkts as RRefDeque<Buf>).push(b);
      tx.pktLens!.setU32(i * 4, f.bytes.length);
    });
    tx = net.txSubmitAndPoll(0, tx);
    assert.equal(tx.status, 0);
    const end = Date.now() + 10_000;
    while ((rx.collect as RRefDeque<Buf>).length < 1 + sent.length && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 1));
      rx = net.rxSubmitAndPoll(0, rx);
    }
    const co = rx.collect as RRefDeque<Buf>;
    assert.equal(co.length, 1 + sent.length, 'every frame came back');
    assert.deepEqual([rx.collectInfo!.getU32(0), rx.collectInfo!.getU32(4)], [0xdeadbeef, 0xfeedface], 'the entry of a buffer the calls did not append is left');
    const got = new DataView(new ArrayBuffer(sent.length * 8));
    for (let i = 0; i < sent.length; i++) {
      got.setUint32(i * 8, rx.collectInfo!.getU32((1 + i) * 8), true);
      got.setUint32(i * 8 + 4, rx.collectInfo!.getU32((1 + i) * 8 + 4), true);
    }
    // Loopback keeps the order they were sent in.
    sent.forEach((f, i) => {
      assert.equal(got.getUint32(i * 8, true) & NET_RSS_TYPE_MASK, f.rss, `${f.what}: RSS type`);
      if (f.rss !== 0) assert.equal(got.getUint32(i * 8 + 4, true), f.hash, `${f.what}: the Toeplitz hash of its ${f.rss === NET_RSS_IPV4 ? 'addresses' : 'addresses and ports'}`);
    });
  } finally {
    await boot.stop();
  }
});

test('an RX NetIo whose collectInfo is shorter than twice its collect\'s capacity is refused, nothing taken', async () => {
  const boot = await bootNet({ backend: { kind: 'loopback' }, app: null });
  const { kernel, net } = boot;
  try {
    let rx = hostIo(kernel, 8);
    rx.collectInfo = infoArray(kernel, 15);
    const pk = rx.pkts as RRefDeque<Buf>;
    for (let i = 0; i < 8; i++) pk.push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    rx = net.rxSubmitAndPoll(0, rx);
    assert.equal(rx.status, NET_EINVAL);
    assert.equal((rx.pkts as RRefDeque<Buf>).length, 8, 'no buffer taken');
    assert.equal(net.outstanding(), 0);
    rx.collectInfo = infoArray(kernel, 16);
    rx = net.rxSubmitAndPoll(0, rx);
    assert.equal(rx.status, 0, 'with room for every collect entry, the call goes through');
    assert.equal(net.outstanding(), 8);
  } finally {
    await boot.stop();
  }
});

test('nullnet reports no RX information: its link says so, and its RX calls leave collectInfo as it was', async () => {
  const boot = await bootNet({ backend: 'nullnet', app: null });
  const { kernel, net } = boot;
  try {
    assert.equal(net.link(kernel.kit.allocStruct(0, 'NetLink') as unknown as RRef<NetLink>).rxInfo, 0);
    let rx = hostIo(kernel, 4);
    rx.collectInfo = infoArray(kernel, 8);
    rx.collectInfo!.fill(0xab);
    const pk = rx.pkts as RRefDeque<Buf>;
    for (let i = 0; i < 4; i++) pk.push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    rx = net.rxSubmitAndPoll(0, rx);
    assert.equal((rx.collect as RRefDeque<Buf>).length, 4);
    for (let i = 0; i < 8; i++) assert.equal(rx.collectInfo!.getU32(i * 4), 0xabababab);
  } finally {
    await boot.stop();
  }
});

/**
 * The Net `inner()` with, for every frame the app sends, its destination MAC's backend id and its
 * source IPv4 address recorded in `sent`; `strip` RX answers that carry frames, from the tenth
 * call on, come back without their collectInfo, as from a faulty Net that dropped it
 * (counted in `stripped`). Only a few: their frames are dropped, and the loop would run dry.
 */
function watch(inner: () => Net, sent: { id: number; src: number }[], strip: number, stripped: { n: number }): Net {
  const hdrs = new DataView(new ArrayBuffer(1024 * 30));
  let calls = 0;
  return between(inner, {
    rxSubmitAndPoll(q, io) {
      const r = inner().rxSubmitAndPoll(q, io);
      if (++calls >= 10 && stripped.n < strip && r.count > 0) {
        r.collectInfo = null;
        stripped.n++;
      }
      return r;
    },
    txSubmitAndPoll(q, io) {
      const pk = io.pkts as RRefDeque<Buf>;
      const n = pk.length;
      if (n > 0) {
        pk.readEach(0, n, 0, 30, hdrs, 0);
        for (let i = 0; i < n; i++) sent.push({ id: hdrs.getUint16(i * 30 + 4, true), src: hdrs.getUint32(i * 30 + 26) });
      }
      return inner().txSubmitAndPoll(q, io);
    },
  });
}

test('maglev balances by the NIC\'s hash: every frame to the backend of its flow\'s RSS hash; a NetIo back without collectInfo drops its frames and gets one again', { timeout: 120_000 }, async () => {
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  const boot = await bootNet({ kernel, backend: { kind: 'loopback' }, shadow: false, driver: { rxRing: 256, txRing: 256 } });
  try {
    const sent: { id: number; src: number }[] = [];
    const stripped = { n: 0 };
    let driver: Net | null = null;
    const asApp = (): Net => (driver ??= kernel.bind<Net>(boot.netName, kernel.get('maglev')!));
    const backends = 5;
    kernel.load(artifactPath('maglev'), { imports: [{ object: watch(asApp, sent, 2, stripped) }], config: { pool: 512, backends, flowSlots: 1 << 12 } });
    const app = kernel.bind<NetApp>('maglev');
    const FLOWS = 200;
    assert.equal(app.seed(FLOWS, 60), FLOWS);
    const seeded = sent.length;
    const fwd = runUntil(app, 'fwd', () => sent.length - seeded > 2000 && stripped.n === 2);
    const forwarded = sent.slice(seeded);
    assert.ok(forwarded.length > 2000 && stripped.n === 2, `the loop runs: ${forwarded.length} frames sent, ${stripped.n} answers stripped, ${fwd.frames} frames`);
    // The seed frames (NetApp.seed's template): UDP from 10.0.0.1 + i, port 1024 + i, to 10.1.0.1:9000.
    const names = Array.from({ length: backends }, (_, i) => `10.2.${i >>> 8}.${i & 255}:80`);
    const ref = new Maglev(names, { flowSlots: 1 << 12 });
    const backendOf = (src: number): number => {
      const i = src - 0x0a000001;
      return ref.lookupHashed(flowKey(toeplitz(src, 0x0a010001, 1024 + i, 9000, true)));
    };
    const wrong = forwarded.filter((f) => f.id !== backendOf(f.src));
    assert.equal(wrong.length, 0, `${wrong.length} of ${forwarded.length} frames went to another backend than their hash's, e.g. ${JSON.stringify(wrong[0])}`);
    assert.ok(new Set(forwarded.map((f) => f.id)).size > 1, 'the flows spread over the backends');
    const stats = app.stats(kernel.kit.allocStruct(0, 'NetAppStats') as unknown as RRef<NetAppStats>);
    assert.ok(stats.dropped > 0, 'frames of a batch with no collectInfo are dropped (no hash to balance by)');
    assert.equal(app.shutdown(), 512, 'every buffer back: the pool kept its size');
  } finally {
    await boot.stop();
  }
});

test('the app engine refuses at load the hooks it cannot run: byte counts that are not whole numbers, and rxInfo without a prepare to hand the NIC\'s information to', async () => {
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  const boot = await bootNet({ kernel, backend: { kind: 'loopback' }, app: null });
  try {
    const load = (config: Record<string, number | boolean>): void => {
      kernel.load(join(TEST_ARTIFACTS, 'hookapp.rldom'), { imports: [boot.netName], config: { pool: 64, ...config } });
    };
    const refused: [Record<string, number | boolean>, RegExp][] = [
      [{ headerBytes: 12.5 }, /header bytes 12\.5/],
      [{ headerBytes: 12, rewriteBytes: 6.5 }, /rewrite 6\.5/],
      [{ rxInfoBytes: 2.5 }, /rxInfo header bytes 2\.5/],
      [{ rxInfoBytes: 0, prepare: false }, /rxInfo without prepare/],
    ];
    for (const [config, why] of refused) {
      assert.throws(() => load(config), why, `refused at load: ${JSON.stringify(config)}`);
    }
    // Hooks it can run load, and the app forwards.
    load({ rxInfoBytes: 0, rewriteBytes: 0 });
    const app = kernel.bind<NetApp>('hookapp');
    assert.equal(app.seed(8, 60), 8);
    assert.ok(runUntil(app, 'fwd', (n) => n > 64).frames > 64, 'the app forwards');
    app.shutdown();
  } finally {
    await boot.stop();
  }
});
