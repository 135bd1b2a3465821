/**
 * The NIC model sees a driver's register writes in order, even though it reads its registers
 * once per step: a frame that arrives in a step after the driver enabled RX (or opened the
 * filter) is received, not dropped for the step's stale read; a queue disabled mid-step keeps the
 * frames it took (their statuses written back) and its RDH is left to the driver.
 *
 * The model is stepped by hand; a test backend plays the driver's register writes between the
 * step's register read and a frame's arrival, as the worker thread can be preempted there (a
 * loopback frame from a TDT rung after RXEN was once lost so, in CI, under load). The property
 * splits a driver's whole bring-up across steps, before them and amid them, at random.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { NicModel, Backend } from '../../src/devices/nic/model.js';
import { R, udpFrame, handModel, rxBringUp, writeRegs, type HandModel } from './nic-harness.js';

const MAC = [2, 0, 0, 0, 0, 1];
const RING = 4096;
const BUFS = 65536;
const N = 64;

/** A hand-stepped model with a ring of N RX descriptors at RING, `posted` of them given buffers; no register written yet. */
function bare(posted: number): HandModel {
  const r = handModel(1, 1 << 20, MAC);
  for (let i = 0; i < posted; i++) r.p32[(RING + i * 16) >>> 2] = BUFS + i * 2048;
  return r;
}

/** bare(posted) with the whole bring-up of queue 0 written; RXCTRL and FCTRL as told. */
function rig(posted: number, rxctrl: number, fctrl: number): HandModel {
  const r = bare(posted);
  writeRegs(r.bar0, rxBringUp(0, RING, N, { tail: posted, rxctrl, fctrl }));
  return r;
}

/** A backend whose poll runs `during` (the driver, between the step's register read and the frames). */
function playing(during: (m: NicModel) => void): Backend {
  return { busy: false, poll: (m) => { during(m); return 1; }, transmit: () => {} };
}

const status = (r: HandModel, i: number): number => r.p32[(RING + i * 16 + 8) >>> 2]!;
const ours = udpFrame(60, 0x0a000001, 0x0a000002, 1000, 7, 1, MAC);
const foreign = udpFrame(60, 0x0a000001, 0x0a000002, 1000, 7, 1, [2, 0, 0, 0, 0, 9]);

test('RXEN written after the step read RXCTRL: a frame arriving after it is received, not dropped', () => {
  const r = rig(8, 0, R.FCTRL_BAM);
  r.model.step(playing((m) => {
    Atomics.store(r.bar0, R.RXCTRL, R.RXCTRL_RXEN);
    m.receive(ours, 0, ours.length);
  }), 0);
  assert.equal(Atomics.load(r.bar0, R.GPRC), 1, 'counted');
  assert.equal(status(r, 0), R.RXD_STAT_DD | R.RXD_STAT_EOP, 'written back');
  assert.equal(Atomics.load(r.bar0, R.RDH(0)), 1);
});

test('the filter opened after the step read FCTRL: a foreign frame arriving after it is received; one the filter still refuses is not', () => {
  const r = rig(8, R.RXCTRL_RXEN, R.FCTRL_BAM);
  r.model.step(playing((m) => m.receive(foreign, 0, foreign.length)), 0);
  assert.equal(Atomics.load(r.bar0, R.GPRC), 0, 'refused by the filter, as configured');
  r.model.step(playing((m) => {
    Atomics.store(r.bar0, R.FCTRL, R.FCTRL_BAM | R.FCTRL_UPE);
    m.receive(foreign, 0, foreign.length);
  }), 1);
  assert.equal(Atomics.load(r.bar0, R.GPRC), 1);
  assert.equal(status(r, 0), R.RXD_STAT_DD | R.RXD_STAT_EOP);
});

test('a queue disabled mid-step: the frames it took are written back, its RDH is left to the driver', () => {
  const r = rig(8, R.RXCTRL_RXEN, R.FCTRL_BAM);
  r.model.step(playing((m) => {
    m.receive(ours, 0, ours.length);
    m.receive(ours, 0, ours.length);
    // The driver disables the queue and rewinds RDH to reconfigure it; a frame the filter refuses
    // makes the model look at its registers again.
    Atomics.store(r.bar0, R.RXDCTL(0), 0);
    Atomics.store(r.bar0, R.RDH(0), 0);
    m.receive(foreign, 0, foreign.length);
  }), 0);
  assert.equal(status(r, 0), R.RXD_STAT_DD | R.RXD_STAT_EOP, 'first frame written back');
  assert.equal(status(r, 1), R.RXD_STAT_DD | R.RXD_STAT_EOP, 'second frame written back');
  assert.equal(Atomics.load(r.bar0, R.RDH(0)), 0, 'RDH as the driver wrote it');
  assert.equal(Atomics.load(r.bar0, R.GPRC), 2);
});

test('any split of the bring-up writes across steps, before a step or amid it: every frame that arrives after the last write is received, in ring order (property)', () => {
  const DONE = R.RXD_STAT_DD | R.RXD_STAT_EOP;
  fc.assert(fc.property(
    fc.array(fc.record({ before: fc.nat(3), during: fc.nat(3), frames: fc.nat(4) }), { minLength: 1, maxLength: 12 }),
    (steps) => {
      const r = bare(N - 1);
      const writes = rxBringUp(0, RING, N, { tail: N - 1, fctrl: R.FCTRL_BAM });
      let w = 0;
      const write = (k: number): void => {
        for (; k > 0 && w < writes.length; k--, w++) Atomics.store(r.bar0, writes[w]![0], writes[w]![1]);
      };
      // RXCTRL is written last: a frame before it has nowhere to go, every frame after it must land.
      let expected = 0;
      steps.forEach((s, i) => {
        write(s.before);
        r.model.step(playing((m) => {
          write(s.during);
          for (let f = 0; f < s.frames; f++) {
            m.receive(ours, 0, ours.length);
            if (w === writes.length) expected++;
          }
        }), i);
      });
      assert.equal(Atomics.load(r.bar0, R.GPRC), expected);
      for (let i = 0; i < expected; i++) assert.equal(status(r, i), DONE, `slot ${i}`);
      assert.equal(status(r, expected), 0, 'nothing past the last frame');
    },
  ), { numRuns: 300 });
});
