/**
 * Issue 5's network path on the kernel: the NIC driver domain on loopback (data integrity over
 * frame sizes 60..1514), nullnet, l2fwd (MAC swap) and maglev (consistent flow assignment) as
 * domains, transparent recovery by nic_shadow with crashes injected under load, and domains
 * loaded from another build's artifacts directory (the ab-net probe's A/B).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as npath from 'node:path';
import { bootNet } from '../../src/host/net.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { artifactPath } from '../../src/kernel/paths.js';
import { NET_EINVAL, type Net, type NetApp, type NetAppStats, type NetIo } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { describeProgress, hostIo, runUntil } from './helpers.js';

type Buf = RRefArray<number>;
const MAC = [2, 0, 0, 0, 0, 1];

function frameFor(len: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(MAC, 0);
  f.set([2, 0, 0, 0, 0, 0x22], 6);
  f[12] = 0x08; f[14] = 0x45; f[23] = 17;
  for (let i = 24; i < len; i++) f[i] = (len * 7 + i * 13) & 255;
  return f;
}

test('driver domain on loopback: sampled frame sizes 60..1514 arrive byte-exact; every buffer comes back', async () => {
  const boot = await bootNet({ backend: { kind: 'loopback' }, app: null });
  const { kernel, net } = boot;
  try {
    const sizes = [60, 61, 64, 127, 128, 255, 256, 511, 512, 777, 1023, 1024, 1200, 1499, 1513, 1514];
    const pool: Buf[] = [];
    for (let i = 0; i < 256; i++) pool.push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    let rx = hostIo(kernel, 32);
    let tx = hostIo(kernel, 32);
    // Post RX buffers.
    for (let i = 0; i < 4; i++) {
      const pk = rx.pkts as RRefDeque<Buf>;
      while (pk.length < 32 && pool.length) pk.push(pool.pop()!);
      rx = net.rxSubmitAndPoll(0, rx);
      assert.equal(rx.status, 0);
    }
    const tpk = tx.pkts as RRefDeque<Buf>;
    sizes.forEach((len, i) => {
      const b = pool.pop()!;
      b.write(0, frameFor(len));
      tpk.push(b);
      tx.pktLens!.setU32(i * 4, len);
    });
    tx = net.txSubmitAndPoll(0, tx);
    assert.equal(tx.status, 0);
    const got = new Map<number, Uint8Array>();
    const end = Date.now() + 5000;
    while (got.size < sizes.length && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 1));
      rx = net.rxSubmitAndPoll(0, rx);
      const co = rx.collect as RRefDeque<Buf>;
      const n = co.length;
      for (let i = 0; i < n; i++) {
        const len = rx.collectLens!.getU32(i * 4);
        const b = co.pop()!;
        const bytes = new Uint8Array(len);
        b.read(0, bytes);
        got.set(len, bytes);
        pool.push(b);
      }
      tx = net.txSubmitAndPoll(0, tx);
      const done = tx.collect as RRefDeque<Buf>;
      for (let b = done.pop(); b; b = done.pop()) pool.push(b);
    }
    for (const len of sizes) assert.deepEqual(got.get(len), frameFor(len), `frame of ${len} bytes`);
    // Drain: everything the driver holds comes back.
    const out = net.outstanding();
    let d = hostIo(kernel, 1);
    d.collect = kernel.kit.allocDeque(0, Math.max(1, out)) as never;
    d.collectLens = kernel.kit.allocArray(0, 'u32', Math.max(1, out)) as never;
    d = net.drain(d);
    assert.equal(d.status, 0);
    const dc = d.collect as RRefDeque<Buf>;
    for (let b = dc.pop(); b; b = dc.pop()) pool.push(b);
    for (const io of [rx, tx]) for (const q of [io.pkts, io.collect] as RRefDeque<Buf>[]) for (let b = q.pop(); b; b = q.pop()) pool.push(b);
    assert.equal(pool.length, 256, 'no buffer lost');
    assert.equal(net.outstanding(), 0);
    // A malformed call is an error value, not a panic.
    const bad = kernel.kit.allocStruct(0, 'NetIo') as unknown as RRef<NetIo>;
    const r = net.rxSubmitAndPoll(0, bad);
    assert.equal(r.status, -22);
    assert.equal(kernel.get(boot.netName)?.live, true);
  } finally {
    await boot.stop();
  }
});

test('driver domain TX: a refused frame and the frames after it stay in pkts, in order, with their lengths', async () => {
  const boot = await bootNet({ backend: { kind: 'loopback' }, app: null });
  const { kernel, net } = boot;
  const TAG = 2000; // a byte past every frame, naming the buffer
  try {
    const pool: Buf[] = [];
    for (let i = 0; i < 64; i++) pool.push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    let tx = hostIo(kernel, 8);
    let refused = 0;
    // Valid lengths, and lengths the driver must refuse: 0 and more than the 2048-byte buffer.
    const len = fc.oneof(fc.integer({ min: 60, max: 1514 }), fc.constantFrom(0, 3000));
    fc.assert(fc.property(fc.array(len, { minLength: 1, maxLength: 8 }), (lens) => {
      const pk = tx.pkts as RRefDeque<Buf>;
      lens.forEach((l, i) => {
        const b = pool.pop()!;
        b.setU8(TAG, i);
        pk.push(b);
        tx.pktLens!.setU32(i * 4, l);
      });
      tx = net.txSubmitAndPoll(0, tx);
      assert.equal(tx.status, 0);
      // Expected: the valid prefix is taken; the first refused frame goes to the back.
      const bad = lens.findIndex((l) => l === 0 || l > 2048);
      const left = bad < 0 ? [] : [...lens.keys()].slice(bad + 1).concat([bad]);
      if (bad >= 0) refused++;
      const after = tx.pkts as RRefDeque<Buf>;
      assert.equal(after.length, left.length, `left in pkts for ${lens}`);
      left.forEach((i, k) => {
        assert.equal(tx.pktLens!.getU32(k * 4), lens[i], `length of element ${k} for ${lens}`);
        const b = after.pop()!;
        assert.equal(b.getU8(TAG), i, `element ${k} is frame ${i} for ${lens}`);
        pool.push(b);
      });
      const done = tx.collect as RRefDeque<Buf>;
      for (let b = done.pop(); b; b = done.pop()) pool.push(b);
    }), { numRuns: 40 });
    assert.equal(Number(boot.netStats().txRefused), refused);
  } finally {
    await boot.stop();
  }
});

test('nullnet: RX returns the buffers as filled, TX completes at once', async () => {
  const boot = await bootNet({ backend: 'nullnet', app: 'l2fwd', frameSize: 64 });
  try {
    const p = runUntil(boot.app!, 'fwd', (n) => n > 1000);
    assert.ok(p.frames > 1000, `forwarded ${describeProgress(p)}`);
    const s = boot.appStats()!;
    assert.equal(s.poolNow, s.poolSize);
    assert.equal(boot.netStats().rxPackets, boot.netStats().txPackets);
  } finally {
    await boot.stop();
  }
});

/** A host-side Net (trusted test object): feeds given frames, captures what is sent. */
function fakeNet(frames: Uint8Array[], sent: Uint8Array[]): Net {
  let next = 0;
  const ok = (io: RRef<NetIo>): RRef<NetIo> => {
    io.status = 0;
    return io;
  };
  return {
    rxSubmitAndPoll(_q, io) {
      const pk = io.pkts as RRefDeque<Buf>;
      const co = io.collect as RRefDeque<Buf>;
      while (pk.length > 0 && co.length < co.capacity && next < frames.length) {
        const b = pk.pop()!;
        b.write(0, frames[next]!);
        io.collectLens!.setU32(co.length * 4, frames[next]!.length);
        co.push(b);
        next++;
      }
      return ok(io);
    },
    txSubmitAndPoll(_q, io) {
      const pk = io.pkts as RRefDeque<Buf>;
      const co = io.collect as RRefDeque<Buf>;
      let i = 0;
      while (pk.length > 0 && co.length < co.capacity) {
        const len = io.pktLens!.getU32(i * 4);
        const b = pk.pop()!;
        const bytes = new Uint8Array(len);
        b.read(0, bytes);
        sent.push(bytes);
        io.collectLens!.setU32(co.length * 4, len);
        co.push(b);
        i++;
      }
      return ok(io);
    },
    outstanding: () => 0,
    drain: (io) => ok(io),
    stats: (o) => o,
    link(o) {
      o.mac = MAC as never;
      return o;
    },
    setInterrupts: () => 0,
    waitRx: async () => 1,
  };
}

function udp(srcIp: number, sport: number): Uint8Array {
  const f = frameFor(64);
  const dv = new DataView(f.buffer);
  dv.setUint32(26, srcIp);
  dv.setUint32(30, 0x0a010001);
  dv.setUint16(34, sport);
  dv.setUint16(36, 80);
  return f;
}

test('l2fwd domain swaps the MAC addresses of every frame and sends it back; receive errors are not sent', () => {
  const kernel = new Kernel({ physBytes: 32 << 20, log: () => {} });
  try {
    // Every 7th entry a receive error (length 0): runs of frames to send and to drop in one batch.
    const entries = Array.from({ length: 120 }, (_, i) => (i % 7 === 3 ? new Uint8Array(0) : udp(0x0a000000 + i, 1000 + i)));
    const frames = entries.filter((f) => f.length > 0);
    const sent: Uint8Array[] = [];
    kernel.load(artifactPath('l2fwd'), { imports: [{ object: fakeNet(entries, sent) }], config: { pool: 128 } });
    const app = kernel.bind<NetApp>('l2fwd');
    const p = runUntil(app, 'fwd', () => sent.length >= frames.length);
    assert.equal(sent.length, frames.length, `sent ${sent.length} of ${frames.length} (${describeProgress(p)})`);
    sent.forEach((s, i) => {
      const f = frames[i]!;
      assert.deepEqual([...s.subarray(0, 6)], [...f.subarray(6, 12)], 'dst <- src');
      assert.deepEqual([...s.subarray(6, 12)], [...f.subarray(0, 6)], 'src <- dst');
      assert.deepEqual(s.subarray(12), f.subarray(12), 'rest untouched');
    });
    assert.equal(app.shutdown(), 128);
    kernel.terminate('l2fwd');
  } finally {
    kernel.shutdown();
  }
});

test('l2fwd domain drops runts shorter than an Ethernet header instead of sending bytes past their end', () => {
  const kernel = new Kernel({ physBytes: 32 << 20, log: () => {} });
  try {
    const entries = [udp(0x0a000001, 1001), udp(0x0a000002, 1002).slice(0, 6), udp(0x0a000003, 1003), udp(0x0a000004, 1004).slice(0, 13)];
    const sent: Uint8Array[] = [];
    kernel.load(artifactPath('l2fwd'), { imports: [{ object: fakeNet(entries, sent) }], config: { pool: 8 } });
    const app = kernel.bind<NetApp>('l2fwd');
    const st = (): RRef<NetAppStats> => app.stats(kernel.kit.allocStruct(0, 'NetAppStats') as unknown as RRef<NetAppStats>);
    runUntil(app, 'fwd', () => st().rxFrames >= entries.length, 5000);
    assert.deepEqual(sent.map((f) => f.length), [64, 64], 'the two whole frames, not the runts');
    assert.equal(st().dropped, 2);
    assert.equal(app.shutdown(), 8);
    kernel.terminate('l2fwd');
  } finally {
    kernel.shutdown();
  }
});

test('maglev domain: each flow always goes to the same backend; flows spread over backends', () => {
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  try {
    const FLOWS = 2000;
    const flows = Array.from({ length: FLOWS }, (_, i) => udp(0x0a000000 + i, 1024 + (i % 5000)));
    const frames = [...flows, ...flows, ...flows];
    const sent: Uint8Array[] = [];
    kernel.load(artifactPath('maglev'), { imports: [{ object: fakeNet(frames, sent) }], config: { pool: 128, backends: 8, flowSlots: 1 << 16 } });
    const app = kernel.bind<NetApp>('maglev');
    const p = runUntil(app, 'fwd', () => sent.length >= frames.length);
    assert.equal(sent.length, frames.length, `sent ${sent.length} of ${frames.length} (${describeProgress(p)})`);
    const backendOf = (s: Uint8Array): number => s[4]! | (s[5]! << 8);
    const per = new Array(8).fill(0);
    for (let i = 0; i < FLOWS; i++) {
      const b = backendOf(sent[i]!);
      assert.ok(b >= 0 && b < 8);
      assert.equal(backendOf(sent[i + FLOWS]!), b, `flow ${i} stays`);
      assert.equal(backendOf(sent[i + 2 * FLOWS]!), b, `flow ${i} stays`);
      assert.deepEqual([...sent[i]!.subarray(6, 12)], MAC, 'source MAC is the NIC');
      per[b]++;
    }
    for (const c of per) assert.ok(c > FLOWS / 8 / 2, `spread ${per}`);
    const st = kernel.kit.allocStruct(0, 'NetAppStats') as unknown as RRef<NetAppStats>;
    // Flows tracked: seen bits (2^16 buckets; flows sharing one count once, ~1970 of 2000 expected).
    const tracked = app.stats(st).flows;
    assert.ok(tracked >= 0.97 * FLOWS && tracked <= FLOWS, `flows tracked ${tracked} of ${FLOWS}`);
    app.shutdown();
  } finally {
    kernel.shutdown();
  }
});

test('maglev domain: backends(n) changes the backend set under live flows (survivors keep theirs, the dropped ones\' flows move); a bad n is refused; l2fwd has no backends', () => {
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  try {
    const FLOWS = 2000;
    const flows = Array.from({ length: FLOWS }, (_, i) => udp(0x0a000000 + i, 1024 + i));
    const frames = [...flows];
    const sent: Uint8Array[] = [];
    kernel.load(artifactPath('maglev'), { imports: [{ object: fakeNet(frames, sent) }], config: { pool: 128, backends: 8, flowSlots: 1 << 16 } });
    const app = kernel.bind<NetApp>('maglev');
    let p = runUntil(app, 'fwd', () => sent.length >= FLOWS);
    assert.equal(sent.length, FLOWS, describeProgress(p));
    for (const bad of [0, 9, 1.5, -1, Number.NaN]) assert.equal(app.backends(bad), -22, `backends(${bad}) refused`);
    assert.equal(app.backends(6), 6);
    frames.push(...flows); // every flow again, after the change
    p = runUntil(app, 'fwd', () => sent.length >= 2 * FLOWS);
    assert.equal(sent.length, 2 * FLOWS, describeProgress(p));
    const backendOf = (f: Uint8Array): number => f[4]! | (f[5]! << 8);
    let moved = 0;
    for (let i = 0; i < FLOWS; i++) {
      const before = backendOf(sent[i]!);
      const after = backendOf(sent[FLOWS + i]!);
      assert.ok(after < 6, `flow ${i} went to backend ${after}, which was removed`);
      if (before < 6) assert.equal(after, before, `flow ${i} keeps backend ${before}`);
      else moved++;
    }
    assert.ok(moved > FLOWS / 8, `the two removed backends had flows (${moved}) and they moved`);
    app.shutdown();
    kernel.load(artifactPath('l2fwd'), { imports: [{ object: fakeNet([], []) }], config: { pool: 16 } });
    assert.equal(kernel.bind<NetApp>('l2fwd').backends(4), -95, 'l2fwd: EOPNOTSUPP');
  } finally {
    kernel.shutdown();
  }
});

test('maglev domain: at most 65,536 backends (a frame names its backend in 16 bits of its MAC): more is refused at load, the last id fits', async () => {
  const refused = bootNet({ backend: { kind: 'loopback' }, app: 'maglev', appConfig: { backends: 65537, flowSlots: 1 << 10 } });
  await assert.rejects(refused, /backends 65537 must be a whole number in 1\.\.65536/);
  const boot = await bootNet({ backend: { kind: 'loopback' }, app: 'maglev', appConfig: { backends: 65536, flowSlots: 1 << 10 } });
  try {
    assert.equal(boot.app!.backends(65536), 65536);
    assert.equal(boot.app!.backends(65537), NET_EINVAL);
  } finally {
    await boot.stop();
  }
});

test('maglev domain: IPv4 frames go out in order; short, non-IPv4 and error entries are dropped; no buffer leaked (property)', () => {
  type Kind = 'udp' | 'ipv6' | 'short' | 'error';
  const frameOf = (k: Kind, i: number): Uint8Array => {
    if (k === 'udp') return udp(0x0a000000 + i, 1024 + i);
    if (k === 'error') return new Uint8Array(0); // the fake Net reports length 0: a receive error
    const f = k === 'short' ? udp(0x0a000000 + i, 1024 + i).slice(0, 37) : frameFor(64);
    if (k === 'ipv6') f.set([0x86, 0xdd], 12);
    return f;
  };
  const kinds = fc.array(fc.constantFrom<Kind>('udp', 'udp', 'udp', 'ipv6', 'short', 'error'), { minLength: 1, maxLength: 150 });
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  try {
    let st = kernel.kit.allocStruct(0, 'NetAppStats') as unknown as RRef<NetAppStats>;
    fc.assert(fc.property(kinds, (ks) => {
      const frames = ks.map(frameOf);
      const sent: Uint8Array[] = [];
      kernel.load(artifactPath('maglev'), { imports: [{ object: fakeNet(frames, sent) }], config: { pool: 64, backends: 4, flowSlots: 1 << 10 } });
      try {
        const app = kernel.bind<NetApp>('maglev');
        const stats = (): RRef<NetAppStats> => (st = app.stats(st)); // the struct moves in and back
        const received = ks.filter((k) => k !== 'error').length;
        const expected = ks.flatMap((k, i) => (k === 'udp' ? [frames[i]!] : []));
        const p = runUntil(app, 'fwd', () => stats().rxFrames >= received && sent.length >= expected.length);
        assert.equal(sent.length, expected.length, `sent (${describeProgress(p)})`);
        sent.forEach((s, j) => {
          const f = expected[j]!;
          assert.deepEqual(s.subarray(12), f.subarray(12), `frame ${j}: the IPv4 frames in order, past the MACs untouched`);
          assert.deepEqual([...s.subarray(0, 4)], [2, 0, 0, 0], 'destination: a backend');
          assert.ok((s[4]! | (s[5]! << 8)) < 4, 'backend id');
          assert.deepEqual([...s.subarray(6, 12)], MAC, 'source MAC is the NIC');
        });
        const s = stats();
        assert.equal(s.rxFrames, received);
        assert.equal(s.dropped, received - expected.length);
        assert.equal(s.flows, expected.length);
        assert.equal(s.poolNow, s.poolSize);
        assert.equal(app.shutdown(), 64);
      } finally {
        kernel.terminate('maglev');
      }
    }), { numRuns: 15 });
  } finally {
    kernel.shutdown();
  }
});

test('recovery: lastRestartMs counts from the death, the kernel\'s termination of the driver included, not from the shadow\'s first step', async () => {
  const kernel = new Kernel({ physBytes: 128 << 20, log: () => {} });
  const boot = await bootNet({ kernel, backend: { kind: 'pktgen', pktgen: { frameSize: 60, flows: 1024 } }, shadow: true, app: 'l2fwd' });
  // The kernel's fault handling runs inside the failing call, before the shadow's hook: make it
  // take TERMINATION_MS (a fault listener is the last step of it), as reclaiming a big driver can.
  const TERMINATION_MS = 120;
  let diedAt = -1;
  const off = kernel.onFault((d) => {
    if (d.name !== boot.driverName) return;
    diedAt = d.diedAtMs;
    const until = performance.now() + TERMINATION_MS;
    while (performance.now() < until);
  });
  try {
    const app = boot.app!;
    app.run('fwd', 32, 100);
    const t0 = performance.now();
    kernel.injectFault(boot.driverName!, { afterCalls: 3 }); // inside a routed call, under traffic
    app.run('fwd', 32, 50);
    const s = boot.netStats();
    assert.equal(s.restarts, 1);
    assert.ok(diedAt >= t0, `the kernel stamped the death (${diedAt}) after the fault was armed (${t0})`);
    assert.ok(s.lastRestartMs >= TERMINATION_MS, `lastRestartMs ${s.lastRestartMs} includes the ${TERMINATION_MS} ms the termination took`);
    assert.ok(s.lastRestartMs < performance.now() - t0, `lastRestartMs ${s.lastRestartMs} is within the run`);
    assert.equal(boot.appStats()!.rpcErrors, 0);
  } finally {
    off();
    await boot.stop();
    kernel.shutdown();
  }
});

test('recovery: driver crashes under l2fwd load never reach the app; no buffer leaked; losses counted', async () => {
  const kernel = new Kernel({ physBytes: 128 << 20, log: () => {} });
  const boot = await bootNet({ kernel, backend: { kind: 'pktgen', pktgen: { frameSize: 60, flows: 1024 } }, shadow: true });
  try {
    const baseline = kernel.heap.totalUsage();
    kernel.load(artifactPath('l2fwd'), { imports: [boot.netName], config: { pool: 1024 } });
    const app = kernel.bind<NetApp>('l2fwd');
    // Traffic flows before the crashes and carries on after each one (progress, not a time window).
    const PER_RUN = 2000;
    const before = runUntil(app, 'fwd', (n) => n > PER_RUN);
    assert.ok(before.frames > PER_RUN, `traffic flows: ${describeProgress(before)}`);
    const crashes: ('now' | { afterCalls: number })[] = ['now', { afterCalls: 1 }, { afterCalls: 2 }, { afterCalls: 7 }, 'now', { afterCalls: 3 }];
    for (const c of crashes) {
      kernel.injectFault(boot.driverName!, c);
      const run = runUntil(app, 'fwd', (n) => n > PER_RUN);
      assert.ok(run.frames > PER_RUN, `traffic carried on after crash ${JSON.stringify(c)}: ${describeProgress(run)}; net ${JSON.stringify(boot.netStats())}`);
    }
    const s = boot.netStats();
    assert.equal(s.restarts, crashes.length);
    assert.ok(s.framesLost > 0, `frames lost counted: ${s.framesLost}`);
    assert.equal(s.buffersReplaced, 0, 'nothing replaced: every buffer the dead drivers held came back to the shadow');
    const st = kernel.kit.allocStruct(0, 'NetAppStats') as unknown as RRef<NetAppStats>;
    const as = app.stats(st);
    assert.equal(as.rpcErrors, 0, 'no RpcError reached the app');
    assert.equal(kernel.get('l2fwd')!.live, true);
    assert.equal(kernel.get('l2fwd')!.faults, 0);
    as.drop();
    assert.equal(app.shutdown(), 1024, 'the pool kept its size');
    kernel.terminate('l2fwd');
    const after = kernel.heap.totalUsage();
    assert.deepEqual(after, baseline, 'heap usage back to its baseline');
  } finally {
    await boot.stop();
    kernel.shutdown();
  }
});

test('bootNet loads the domains from another artifacts directory when told (ab-net), and names what it cannot find', async () => {
  const dir = nfs.mkdtempSync(npath.join(os.tmpdir(), 'redleaf-artifacts-'));
  try {
    for (const name of ['nic', 'l2fwd']) nfs.copyFileSync(artifactPath(name), npath.join(dir, `${name}.rldom`));
    const boot = await bootNet({ backend: { kind: 'loopback' }, app: 'l2fwd', artifacts: dir });
    try {
      assert.ok(boot.app!.seed(64, 60) > 0);
      assert.ok(boot.app!.run('fwd', 32, 100) > 0, 'the loop forwards through the domains loaded from there');
    } finally {
      await boot.stop();
    }
    await assert.rejects(bootNet({ backend: { kind: 'loopback' }, app: 'maglev', artifacts: dir }), (e: Error) => e.message.includes(npath.join(dir, 'maglev.rldom')));
  } finally {
    nfs.rmSync(dir, { recursive: true, force: true });
  }
});
