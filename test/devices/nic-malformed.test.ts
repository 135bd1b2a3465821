/**
 * Malformed input a faulty driver might write is refused by the NIC model, reported (NIC_ERR
 * cause bits, RXE in the RX write-back) and survived: after each case the device still moves a
 * good frame, and the worker never dies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { R, withNic, wake, until, setupRx, setupTx, rxDesc, txDesc, rxWb, udpFrame, type Nic } from './nic-harness.js';

const N = 16;

/** Rings on queue 0 with every RX slot posted; returns what the cases need. */
function bringUp(nic: Nic, rxKib = 2): { rxr: number; txr: number; txb: number; st: { tail: number } } {
  const { bar0, heap, dv } = nic;
  const rxr = heap.alloc(N * 16, 128).addr;
  const txr = heap.alloc(N * 16, 128).addr;
  setupRx(bar0, 0, rxr, N, rxKib);
  setupTx(bar0, 0, txr, N);
  for (let i = 0; i < N - 1; i++) rxDesc(dv, rxr, i, heap.alloc(2048, 64).addr);
  Atomics.store(bar0, R.RDT(0), N - 1);
  wake(bar0);
  return { rxr, txr, txb: heap.alloc(16 * 1024 + 64, 64).addr, st: { tail: 0 } };
}

function send(nic: Nic, txr: number, st: { tail: number }, buf: number, len: number, cmd?: number, dtyp?: number): void {
  txDesc(nic.dv, txr, st.tail, buf, len, cmd, dtyp);
  st.tail = (st.tail + 1) % N;
  Atomics.store(nic.bar0, R.TDT(0), st.tail);
  wake(nic.bar0);
}

async function expectErr(bar0: Int32Array, bit: number): Promise<void> {
  let seen = 0;
  await until(() => (seen |= Atomics.exchange(bar0, R.NIC_ERR, 0)) !== 0, 'NIC_ERR');
  assert.equal(seen, bit);
}

/** A good frame still goes through: the model kept running. */
async function stillWorks(nic: Nic, txr: number, st: { tail: number }, txb: number): Promise<void> {
  const before = Atomics.load(nic.bar0, R.GPRC);
  nic.p8.set(udpFrame(100, 1, 2, 3, 4, 5), txb);
  send(nic, txr, st, txb, 100);
  await until(() => Atomics.load(nic.bar0, R.GPRC) === before + 1, 'a good frame after the fault');
}

test('TX descriptors: address outside memory, length 0, length > 16 KiB, not a data descriptor: refused, DD set, model alive', async () => {
  await withNic({ kind: 'loopback' }, async (nic) => {
    const { bar0, dv, heap } = nic;
    const { txr, txb, st } = bringUp(nic);
    const physLen = heap.phys.byteLength;
    const cases: [number, number, number, number | undefined][] = [
      [R.ERR_TX_ADDR, physLen - 10, 100, undefined],
      [R.ERR_TX_ADDR, 2 ** 40, 100, undefined],
      [R.ERR_TX_LEN, txb, 0, undefined],
      [R.ERR_TX_LEN, txb, 16 * 1024 + 1, undefined],
      [R.ERR_TX_DESC, txb, 100, R.TXD_CMD_EOP | R.TXD_CMD_RS], // DEXT clear
    ];
    for (const [bit, addr, len, cmd] of cases) {
      const slot = st.tail;
      send(nic, txr, st, addr, len, cmd);
      await expectErr(bar0, bit);
      assert.ok(dv.getUint32(txr + slot * 16 + 12, true) & R.TXD_STAT_DD, 'refused descriptor is still completed');
      await stillWorks(nic, txr, st, txb);
    }
    assert.equal(Atomics.load(bar0, R.GPTC), cases.length, 'only the good frames were sent');
    assert.equal(Atomics.load(bar0, R.NIC_ERRCNT), cases.length);
  });
});

test('RX: buffer outside memory and frame larger than the buffer are written back with RXE and PKT_LEN 0', async () => {
  await withNic({ kind: 'loopback' }, async (nic) => {
    const { bar0, dv, p8, heap } = nic;
    const { rxr, txr, txb, st } = bringUp(nic, 1);
    rxDesc(dv, rxr, 0, heap.phys.byteLength - 100); // 1 KiB buffer that runs off the end
    p8.set(udpFrame(100, 1, 2, 3, 4, 0), txb);
    send(nic, txr, st, txb, 100);
    await expectErr(bar0, R.ERR_RX_ADDR);
    let wb = rxWb(dv, rxr, 0);
    assert.equal(wb.status, R.RXD_STAT_DD | R.RXD_STAT_EOP | R.RXD_ERR_RXE);
    assert.equal(wb.len, 0);
    p8.set(udpFrame(1500, 1, 2, 3, 4, 0), txb); // 1500 > BSIZEPACKET 1 KiB
    send(nic, txr, st, txb, 1500);
    await expectErr(bar0, R.ERR_RX_SIZE);
    wb = rxWb(dv, rxr, 1);
    assert.equal(wb.status, R.RXD_STAT_DD | R.RXD_STAT_EOP | R.RXD_ERR_RXE);
    assert.equal(Atomics.load(bar0, R.GPRC), 0);
    await stillWorks(nic, txr, st, txb);
  });
});

test('RX: a refused descriptor amid a burst of frames is written back in ring order, the frames around it intact', async () => {
  // The model stores RX status dwords in bursts (model.ts, RX_WB_BURST): a refusal in the middle
  // of one must first write back the frames before it, or their statuses land one slot off.
  await withNic({ kind: 'pktgen', pktgen: { frameSize: 60, flows: 8 } }, async (nic) => {
    const { bar0, dv, heap } = nic;
    const n = 128;
    const bad = new Set([5, 40, 41, 100]);
    const rxr = heap.alloc(n * 16, 128).addr;
    setupRx(bar0, 0, rxr, n);
    for (let i = 0; i < n - 1; i++) rxDesc(dv, rxr, i, bad.has(i) ? heap.phys.byteLength - 100 : heap.alloc(2048, 64).addr);
    Atomics.store(bar0, R.RDT(0), n - 1);
    wake(bar0);
    await until(() => Atomics.load(bar0, R.RDH(0)) === n - 1, 'the ring filled');
    for (let i = 0; i < n - 1; i++) {
      const wb = rxWb(dv, rxr, i);
      if (bad.has(i)) {
        assert.equal(wb.status, R.RXD_STAT_DD | R.RXD_STAT_EOP | R.RXD_ERR_RXE, `slot ${i}: refused`);
        assert.equal(wb.len, 0, `slot ${i}: no frame`);
      } else {
        assert.equal(wb.status, R.RXD_STAT_DD | R.RXD_STAT_EOP, `slot ${i}: a frame`);
        assert.equal(wb.len, 60, `slot ${i}: its length`);
      }
    }
    assert.equal(rxWb(dv, rxr, n - 1).status, 0, 'the slot at RDT is not the device\'s');
    assert.equal(Atomics.load(bar0, R.GPRC), n - 1 - bad.size);
    assert.equal(Atomics.load(bar0, R.NIC_ERRCNT), bad.size);
  });
});

test('ring configuration: base not 128-aligned, RDLEN not a multiple of 128, ring outside memory, bad SRRCTL: queue not enabled', async () => {
  await withNic({ kind: 'loopback' }, async (nic) => {
    const { bar0, heap } = nic;
    const good = heap.alloc(N * 16, 128).addr;
    const bad: [string, () => void, number][] = [
      ['RX base', () => setupRx(bar0, 1, good + 64, N), R.ERR_RXQ_CFG],
      ['RX ring outside memory', () => setupRx(bar0, 1, heap.phys.byteLength - 128, N), R.ERR_RXQ_CFG],
      ['TX base', () => setupTx(bar0, 1, good + 16, N), R.ERR_TXQ_CFG],
      ['TX RDLEN', () => { Atomics.store(bar0, R.TDBAL(1), good); Atomics.store(bar0, R.TDLEN(1), 200); Atomics.store(bar0, R.TXDCTL(1), R.XDCTL_ENABLE); wake(bar0); }, R.ERR_TXQ_CFG],
    ];
    for (const [what, apply, bit] of bad) {
      apply();
      await expectErr(bar0, bit);
      const ctl = bit === R.ERR_RXQ_CFG ? R.RXDCTL(1) : R.TXDCTL(1);
      assert.equal(Atomics.load(bar0, ctl) & R.XDCTL_ENABLE, 0, `${what}: ENABLE cleared`);
    }
    // RDLEN not a multiple of 128, and SRRCTL with BSIZEPACKET 0.
    Atomics.store(bar0, R.RDBAL(1), good);
    Atomics.store(bar0, R.RDLEN(1), 100);
    Atomics.store(bar0, R.SRRCTL(1), 2 | (1 << 25));
    Atomics.store(bar0, R.RXDCTL(1), R.XDCTL_ENABLE);
    wake(bar0);
    await expectErr(bar0, R.ERR_RXQ_CFG);
    Atomics.store(bar0, R.RDLEN(1), 128);
    Atomics.store(bar0, R.SRRCTL(1), 0 | (1 << 25));
    Atomics.store(bar0, R.RXDCTL(1), R.XDCTL_ENABLE);
    wake(bar0);
    await expectErr(bar0, R.ERR_RXQ_CFG);
    const { txr, txb, st } = bringUp(nic);
    await stillWorks(nic, txr, st, txb);
  });
});

test('tails beyond the ring are ignored and reported; the queue keeps its last good tail', async () => {
  await withNic({ kind: 'loopback' }, async (nic) => {
    const { bar0 } = nic;
    const { txr, txb, st } = bringUp(nic);
    await stillWorks(nic, txr, st, txb); // the queues are live before the bad tails arrive
    Atomics.store(bar0, R.RDT(0), N + 3);
    wake(bar0);
    await expectErr(bar0, R.ERR_RDT_RANGE);
    assert.equal(Atomics.load(bar0, R.RDT(0)), N - 1);
    Atomics.store(bar0, R.TDT(0), 1000);
    wake(bar0);
    await expectErr(bar0, R.ERR_TDT_RANGE);
    assert.equal(Atomics.load(bar0, R.TDT(0)), 1);
    assert.equal(Atomics.load(bar0, R.GPTC), 1);
    await stillWorks(nic, txr, st, txb);
  });
});

test('ring registers written while their queue is enabled (base, length, SRRCTL): refused and reported once each, the ring in use kept', async () => {
  await withNic({ kind: 'loopback' }, async (nic) => {
    const { bar0, heap } = nic;
    const { txr, txb, st } = bringUp(nic);
    await stillWorks(nic, txr, st, txb);
    const elsewhere = heap.alloc(N * 16, 128).addr;
    const cases: [string, number, number, number][] = [
      ['RDLEN', R.RDLEN(0), 8 * 16, R.ERR_RXQ_CFG],
      ['RDBAL', R.RDBAL(0), elsewhere, R.ERR_RXQ_CFG],
      ['SRRCTL', R.SRRCTL(0), 1 | (R.SRRCTL_DESCTYPE_ADV_ONEBUF << R.SRRCTL_DESCTYPE_SHIFT), R.ERR_RXQ_CFG],
      ['TDLEN', R.TDLEN(0), 8 * 16, R.ERR_TXQ_CFG],
      ['TDBAL', R.TDBAL(0), elsewhere, R.ERR_TXQ_CFG],
    ];
    for (const [what, reg, value, bit] of cases) {
      Atomics.store(bar0, reg, value);
      wake(bar0);
      await expectErr(bar0, bit);
      // The rings programmed at enable still carry frames.
      await stillWorks(nic, txr, st, txb);
      assert.equal(Atomics.exchange(bar0, R.NIC_ERR, 0), 0, `${what}: reported once, not at every step`);
    }
    assert.equal(Atomics.load(bar0, R.NIC_ERRCNT), cases.length);
  });
});
