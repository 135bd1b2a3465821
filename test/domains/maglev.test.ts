/**
 * Maglev consistent hashing: near-equal shares (round-robin population gives every backend
 * floor(M/N) or ceil(M/N) entries, far inside "a few % of M/N"), minimal disruption on removal
 * (all of the removed backend's entries move; at most 10% of the other backends' entries do,
 * while measured worst cases are ~6% for 3 backends and ~1% for 10..500), connection tracking
 * that keeps 1M flows and keeps surviving flows on their backend (lazily: no flow-cache entry
 * while the table is unchanged), checked against a reference connection table over random
 * sequences of lookups and backend-set changes, and the domain's per-batch hooks (one header
 * check per frame) sending each frame where lookup() sends its 5-tuple.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Maglev, MAGLEV_M, MAX_EPOCHS, flowHash, flowKey, populate } from '../../src/domains/maglev/maglev.js';
import { balancerHooks, HEADER_STRIDE } from '../../src/domains/maglev/index.js';

const backendSets = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 120 });

function counts(table: Int32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const v of table) c[v]!++;
  return c;
}

test('maglev: every backend gets floor(M/N) or ceil(M/N) table entries', () => {
  fc.assert(fc.property(backendSets, (names) => {
    const t = new Int32Array(MAGLEV_M);
    populate(names, t);
    const c = counts(t, names.length);
    const lo = Math.floor(MAGLEV_M / names.length);
    for (const x of c) assert.ok(x === lo || x === lo + 1, `share ${x} vs M/N ${MAGLEV_M / names.length}`);
  }), { numRuns: 40 });
});

test('maglev: removing one backend moves its entries and at most 10% of the others', () => {
  fc.assert(fc.property(backendSets, fc.nat(), (names, pick) => {
    const r = pick % names.length;
    const rest = names.filter((_, i) => i !== r);
    const a = new Int32Array(MAGLEV_M);
    const b = new Int32Array(MAGLEV_M);
    populate(names, a);
    populate(rest, b);
    let others = 0;
    let moved = 0;
    for (let i = 0; i < MAGLEV_M; i++) {
      if (a[i] === r) {
        assert.notEqual(rest[b[i]!], names[r]);
        continue;
      }
      others++;
      if (rest[b[i]!] !== names[a[i]!]) moved++;
    }
    assert.ok(moved / others <= 0.1, `moved ${moved} of ${others} entries of surviving backends`);
  }), { numRuns: 40 });
});

test('maglev: tracks 1M flows; survivors keep their backend, flows of a removed backend move', () => {
  const names = Array.from({ length: 16 }, (_, i) => `10.2.0.${i}:80`);
  const mg = new Maglev(names);
  const FLOWS = 1_000_000;
  const first = new Int32Array(FLOWS);
  // CPU time, not wall-clock time: the bound is about the lookup's cost, which other processes
  // competing for the CPU must not inflate.
  const cpu0 = process.cpuUsage();
  for (let f = 0; f < FLOWS; f++) first[f] = mg.lookup(0x0a000000 + f, 0x0a010001, 1024 + (f & 0x7fff), 80, 6);
  const cpu = process.cpuUsage(cpu0);
  const ns = ((cpu.user + cpu.system) * 1e3) / FLOWS;
  // An unchanged table needs no flow-cache entry: every flow is a seen bit (2^21 of them, so
  // ~0.79M distinct bits for 1M flows).
  assert.equal(mg.cachedFlows, 0);
  assert.ok(mg.trackedFlows >= 0.75 * FLOWS, `tracked ${mg.trackedFlows}`);
  const share = counts(first, names.length);
  for (const c of share) assert.ok(Math.abs(c - FLOWS / 16) < 0.05 * FLOWS / 16, `flow share ${share}`);
  // Change the table under live flows: add two backends and remove backend 3.
  const removed = 3;
  mg.setBackends([...names.filter((_, i) => i !== removed), 'new-a', 'new-b']);
  let kept = 0;
  for (let f = 0; f < FLOWS; f++) {
    const id = mg.lookup(0x0a000000 + f, 0x0a010001, 1024 + (f & 0x7fff), 80, 6);
    if (first[f] === removed) assert.notEqual(id, removed);
    else if (id === first[f]) kept++;
  }
  const survivors = FLOWS - share[removed]!;
  assert.equal(kept, survivors, 'every surviving flow kept its backend');
  // Only the flows through table entries that changed took a flow-cache entry.
  assert.ok(mg.cachedFlows > 0 && mg.cachedFlows < 0.3 * FLOWS, `cached ${mg.cachedFlows}`);
  assert.ok(ns < 2000, `lookup ${ns.toFixed(0)} ns/flow of CPU time`);
});

test('maglev: rejects an empty or duplicated backend set', () => {
  assert.throws(() => new Maglev([]), /no backends/);
  assert.throws(() => new Maglev(['a', 'a']), /duplicate/);
});

/** Frame i's header copy as the app engine lays it out for balancerHooks (HEADER_STRIDE apart). */
const HDR = HEADER_STRIDE;
function header(v: DataView, i: number, t: { src: number; dst: number; sport: number; dport: number; proto: number }): void {
  const o = i * HDR;
  v.setUint32(o, 0x02000000); // destination 02:00:00:00:00:01 (the NIC)
  v.setUint16(o + 4, 0x0001);
  v.setUint16(o + 12, 0x0800);
  v.setUint8(o + 14, 0x45);
  v.setUint8(o + 23, t.proto);
  v.setUint32(o + 26, t.src);
  v.setUint32(o + 30, t.dst);
  v.setUint16(o + 34, t.sport);
  v.setUint16(o + 36, t.dport);
}

/** The NIC's MAC as the engine tells the hooks (AppHooks.link): the source of every frame sent. */
const NIC_MAC = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];

test('maglev hooks, hashing the header: a frame goes to the backend lookup() gives its 5-tuple; short and non-IPv4 frames are dropped', () => {
  const names = Array.from({ length: 7 }, (_, i) => `b${i}`);
  const tuple = fc.record({ src: fc.nat(0xffffffff), dst: fc.nat(0xffffffff), sport: fc.nat(0xffff), dport: fc.nat(0xffff), proto: fc.nat(0xff) });
  const frame = fc.record({ t: tuple, kind: fc.constantFrom('ipv4', 'ipv4', 'ipv4', 'ipv6', 'short') });
  fc.assert(fc.property(fc.array(frame, { minLength: 1, maxLength: 64 }), (frames) => {
    const byHeader = new Maglev(names, { flowSlots: 1 << 10 });
    const byTuple = new Maglev(names, { flowSlots: 1 << 10 });
    const { prepare, process, link } = balancerHooks(byHeader);
    link!(NIC_MAC, false);
    const hdrs = new DataView(new ArrayBuffer(frames.length * HDR));
    const lens = new DataView(new ArrayBuffer(frames.length * 4));
    frames.forEach((f, i) => {
      header(hdrs, i, f.t);
      if (f.kind === 'ipv6') hdrs.setUint16(i * HDR + 12, 0x86dd);
      lens.setUint32(i * 4, f.kind === 'short' ? 37 : 60, true); // the header is 38 bytes
    });
    prepare!(hdrs, lens, frames.length, null);
    frames.forEach((f, i) => {
      const out = process(hdrs, i * HDR, lens.getUint32(i * 4, true), i);
      if (f.kind !== 'ipv4') return assert.equal(out, 0, `frame ${i} (${f.kind}) dropped`);
      assert.equal(out, 60);
      const { src, dst, sport, dport, proto } = f.t;
      const id = hdrs.getUint16(i * HDR + 4, true);
      // Ports are the flow's for TCP and UDP only (the others hash by their 3-tuple: see below).
      const l4 = proto === 6 || proto === 17;
      assert.equal(id, byTuple.lookup(src, dst, l4 ? sport : 0, l4 ? dport : 0, proto), `frame ${i}: backend of its 5-tuple`);
      assert.equal(hdrs.getUint32(i * HDR), 0x02000000, 'destination MAC: 02:00:00:00:<id>');
      assert.deepEqual([...new Uint8Array(hdrs.buffer, i * HDR + 6, 6)], NIC_MAC, 'source MAC: the NIC\'s');
    });
  }), { numRuns: 100 });
});

test('maglev hooks: fragments, IP options and protocols without ports go by their 3-tuple; IHL < 5 and truncated headers are dropped', () => {
  const names = Array.from({ length: 64 }, (_, i) => `b${i}`);
  const byTuple = new Maglev(names, { flowSlots: 1 << 10 });
  const t = { src: 0x0a000001, dst: 0x0a010001, sport: 4321, dport: 80, proto: 17 };
  const three = (proto: number): number => byTuple.lookup(t.src, t.dst, 0, 0, proto);
  type Case = { what: string; len: number; set: (v: DataView, o: number, k: number) => void; want: number | 'drop' };
  const cases: Case[] = [
    // A datagram's first fragment has the ports, the later ones payload there: all must meet.
    { what: 'first fragment (MF)', len: 60, set: (v, o) => v.setUint16(o + 20, 0x2000), want: three(17) },
    { what: 'later fragment', len: 60, set: (v, o, k) => { v.setUint16(o + 20, 185); v.setUint32(o + 34, 0x9e3779b9 * (k + 1)); }, want: three(17) },
    { what: 'last fragment', len: 60, set: (v, o, k) => { v.setUint16(o + 20, 370); v.setUint32(o + 34, k * 7919); }, want: three(17) },
    // ICMP: bytes 34..37 are type, code and a checksum that changes with every echo.
    { what: 'ICMP echo', len: 60, set: (v, o, k) => { v.setUint8(o + 23, 1); v.setUint32(o + 34, 0x08000000 | k); }, want: three(1) },
    // IHL 6: bytes 34..37 are an option; the ports are past the header copy.
    { what: 'IP options', len: 60, set: (v, o, k) => { v.setUint8(o + 14, 0x46); v.setUint32(o + 34, k); }, want: three(17) },
    { what: 'IHL 4', len: 60, set: (v, o) => v.setUint8(o + 14, 0x44), want: 'drop' },
    { what: 'IHL 0', len: 60, set: (v, o) => v.setUint8(o + 14, 0x40), want: 'drop' },
    { what: 'header longer than the frame', len: 40, set: (v, o) => v.setUint8(o + 14, 0x47), want: 'drop' },
  ];
  for (const c of cases) {
    const mg = new Maglev(names, { flowSlots: 1 << 10 });
    const { prepare, process } = balancerHooks(mg);
    const n = 16;
    const hdrs = new DataView(new ArrayBuffer(n * HDR));
    const lens = new DataView(new ArrayBuffer(n * 4));
    for (let k = 0; k < n; k++) {
      header(hdrs, k, t);
      c.set(hdrs, k * HDR, k);
      lens.setUint32(k * 4, c.len, true);
    }
    prepare!(hdrs, lens, n, null);
    for (let k = 0; k < n; k++) {
      const out = process(hdrs, k * HDR, c.len, k);
      if (c.want === 'drop') assert.equal(out, 0, `${c.what}: dropped`);
      else assert.equal(hdrs.getUint16(k * HDR + 4, true), c.want, `${c.what} ${k}: the backend of its 3-tuple`);
    }
  }
});

test('maglev: a backend set of more than half the id limit can be set again, and changed to a subset and back', () => {
  // Ids are stable and never reused: the limit (2^18 - 1 ids) is on names ever seen, not on the
  // names seen plus the set being installed.
  const names = Array.from({ length: 140_000 }, (_, i) => `b${i}`);
  const mg = new Maglev(names, { flowSlots: 1 << 10 });
  const first = mg.table.slice();
  mg.setBackends(names);
  mg.setBackends(names.slice(0, 70_000));
  assert.ok(Math.max(...mg.table) < 70_000, 'the subset: every entry one of its backends');
  mg.setBackends(names);
  assert.deepEqual(mg.table, first, 'the whole set again: the table it had, by the ids it had');
  assert.throws(() => new Maglev(Array.from({ length: 262_144 }, (_, i) => `c${i}`), { flowSlots: 1 << 10 }), /more than 262143 backends/);
});

test('maglev hooks, with the NIC\'s RSS hash: no header byte is read; a frame goes to its hash\'s flow; one the NIC did not hash as IPv4 is dropped', () => {
  const names = Array.from({ length: 7 }, (_, i) => `b${i}`);
  const frame = fc.record({ hash: fc.nat(0xffffffff), type: fc.constantFrom(0x7, 0x1, 0x2, 0x0), len: fc.constantFrom(60, 60, 0) });
  fc.assert(fc.property(fc.array(frame, { minLength: 1, maxLength: 64 }), fc.nat(255), (frames, junk) => {
    const byInfo = new Maglev(names, { flowSlots: 1 << 10 });
    const byKey = new Maglev(names, { flowSlots: 1 << 10 });
    const { prepare, process, link } = balancerHooks(byInfo);
    link!(NIC_MAC, true);
    // The engine copies no header bytes with rxInfo: the copy holds whatever it held before.
    const hdrs = new DataView(new Uint8Array(frames.length * 12).fill(junk).buffer);
    const lens = new DataView(new ArrayBuffer(frames.length * 4));
    const info = new DataView(new ArrayBuffer(frames.length * 8));
    frames.forEach((f, i) => {
      lens.setUint32(i * 4, f.len, true);
      info.setUint32(i * 8, f.type | (1 << 4), true); // RSS type, and the IPv4 packet type above it
      info.setUint32(i * 8 + 4, f.hash, true);
    });
    prepare!(hdrs, lens, frames.length, info);
    frames.forEach((f, i) => {
      if (f.len === 0) return; // the engine calls process only for a frame
      const out = process(hdrs, i * 12, f.len, i);
      if (f.type === 0) return assert.equal(out, 0, `frame ${i}: not hashed as IPv4, dropped`);
      assert.equal(out, f.len);
      assert.equal(hdrs.getUint16(i * 12 + 4, true), byKey.lookupHashed(flowKey(f.hash)), `frame ${i}: the backend of its hash`);
      assert.equal(hdrs.getUint32(i * 12), 0x02000000, 'destination MAC: 02:00:00:00:<id>');
      assert.deepEqual([...new Uint8Array(hdrs.buffer, i * 12 + 6, 6)], NIC_MAC, 'source MAC: the NIC\'s');
    });
  }), { numRuns: 100 });
});

test('maglev: flow keys are non-negative 31-bit integers (-1 stays free to mark "no flow")', () => {
  fc.assert(fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xff), (s, d, p, pr) => {
    for (const h of [flowHash(s, d, p, pr), flowKey(s)]) assert.ok(Number.isInteger(h) && h >= 0 && h <= 0x7fffffff, `key ${h}`);
  }), { numRuns: 500 });
});

test('maglev: the flow cache tells apart flows whose keys share the home slot and the tag\'s bits, and finds each again', () => {
  fc.assert(fc.property(fc.uniqueArray(fc.nat(0x7fffffff), { minLength: 2, maxLength: 8 }), fc.nat(0x3ff), (highs, low) => {
    const mg = new Maglev(['a', 'b', 'c'], { flowSlots: 1 << 10 });
    mg.setBackends(['d', 'e', 'f']); // every table entry changed: every flow takes the tracked path
    // One home slot for all (the low 10 bits), and as many as can be the same top bits (the tag's):
    // only the key's middle bits, held in the slot's key word, tell them apart.
    const keys = [...new Set(highs.map((x) => ((x & ~0x3ff) | low) & 0x7fffffff))];
    const first = keys.map((k) => mg.lookupHashed(k));
    assert.equal(mg.cachedFlows, keys.length, 'one entry per key, none taken for another');
    assert.deepEqual(keys.map((k) => mg.lookupHashed(k)), first, 'each key found again, with its backend');
    assert.equal(mg.cachedFlows, keys.length);
  }), { numRuns: 200 });
});

test('maglev: connection tracking against a reference table, over lookups and backend-set changes (property)', () => {
  const POOL = Array.from({ length: 12 }, (_, i) => `be${i}`);
  const flow = fc.record({ src: fc.nat(15), sport: fc.nat(1) }); // 32 flows: each is seen again and again
  const op = fc.oneof(
    { weight: 6, arbitrary: fc.record({ k: fc.constant('lookup' as const), f: flow }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('change' as const), set: fc.subarray(POOL, { minLength: 1 }) }) },
  );
  fc.assert(fc.property(fc.subarray(POOL, { minLength: 1 }), fc.array(op, { minLength: 40, maxLength: 200 }), (initial, ops) => {
    const mg = new Maglev(initial, { flowSlots: 1 << 16 });
    let alive = new Set(initial);
    /** The reference: each flow's backend since it was first seen, reassigned when that backend dies. */
    const pinned = new Map<string, string>();
    let changes = 0;
    for (const o of ops) {
      if (o.k === 'change') {
        if (changes === MAX_EPOCHS) continue; // pins of flows idle longer than that may expire
        changes++;
        mg.setBackends(o.set);
        alive = new Set(o.set);
        continue;
      }
      const src = 0x0a000000 + o.f.src;
      const name = mg.backendName(mg.lookup(src, 0x0a010001, 1024 + o.f.sport, 80, 6));
      assert.ok(alive.has(name), `${name} is not a live backend`);
      const key = `${o.f.src}/${o.f.sport}`;
      const before = pinned.get(key);
      if (before !== undefined && alive.has(before)) assert.equal(name, before, `flow ${key} moved off its live backend`);
      else if (before !== undefined) {
        // Its backend died: the table's backend for it now (and pinned there from now on).
        const h = flowHash(src, 0x0a010001, ((1024 + o.f.sport) << 16) | 80, 6);
        assert.equal(name, mg.backendName(mg.table[h % MAGLEV_M]!), `flow ${key} of a dead backend: the table's`);
      }
      pinned.set(key, name);
    }
  }), { numRuns: 150 });
});

test('maglev: setting the backend set it already has is no change: idle flows keep their pins however often it is set', () => {
  // A control plane that re-applies its desired state (backends(n) with the current n) must not
  // age the kept epochs: each no-op used to end one, and MAX_EPOCHS of them dropped the pins.
  const names = Array.from({ length: 10 }, (_, i) => `n${i}`);
  const mg = new Maglev(names, { flowSlots: 1 << 12 });
  const FLOWS = 2000;
  const first = Array.from({ length: FLOWS }, (_, f) => mg.lookup(0x0a000000 + f, 0x0a010001, 2000, 80, 17));
  const kept = [...names, 'extra'];
  mg.setBackends(kept); // one real change (entries move to the new backend)
  for (let k = 0; k <= MAX_EPOCHS; k++) mg.setBackends([...kept]);
  for (let f = 0; f < FLOWS; f++) assert.equal(mg.lookup(0x0a000000 + f, 0x0a010001, 2000, 80, 17), first[f], `flow ${f}`);
});

test('maglev: a flow idle across MAX_EPOCHS backend-set changes keeps its backend', () => {
  const names = Array.from({ length: 10 }, (_, i) => `n${i}`);
  const mg = new Maglev(names, { flowSlots: 1 << 12 });
  const FLOWS = 2000;
  const first = Array.from({ length: FLOWS }, (_, f) => mg.lookup(0x0a000000 + f, 0x0a010001, 2000, 80, 17));
  // MAX_EPOCHS changes that each add a backend (moving some table entries) while no flow is looked up.
  for (let k = 0; k < MAX_EPOCHS; k++) mg.setBackends([...names, ...Array.from({ length: k + 1 }, (_, j) => `extra${j}`)]);
  for (let f = 0; f < FLOWS; f++) assert.equal(mg.lookup(0x0a000000 + f, 0x0a010001, 2000, 80, 17), first[f], `flow ${f}`);
});
