/**
 * The NIC driver domain refuses, without failing, what a caller may not post: an RX buffer
 * smaller than rxBufSize, and a buffer that is not a byte array at all (a struct: its memory holds
 * slot numbers, not frame bytes) on RX or TX. A refused buffer stays with the caller, behind the
 * others, and is counted; the driver keeps running (no fault), and the frames before it are taken.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNet, hostIo } from '../../src/host/net.js';
import type { RRef, RRefArray, RRefBase, RRefDeque } from '../../src/runtime/types.js';
import type { NetIo } from '../../src/interfaces/index.js';

type Buf = RRefArray<number>;

test('driver domain: a too-small RX buffer and a struct in RX or TX pkts are refused, counted, kept by the caller; no fault', async () => {
  const boot = await bootNet({ backend: { kind: 'loopback' }, app: null });
  const { kernel, net } = boot;
  const k = kernel.kit;
  const newIo = (cap: number): RRef<NetIo> => hostIo(kernel, cap);
  try {
    // RX: a good buffer, then one of 512 bytes (below rxBufSize), then a struct.
    let rx = newIo(4);
    const rpk = rx.pkts as RRefDeque<RRefBase>;
    rpk.push(k.allocBytes(0, 2048) as RRefBase);
    rpk.push(k.allocBytes(0, 512) as RRefBase);
    rpk.push(k.allocStruct(0, 'NetLink') as RRefBase);
    rx = net.rxSubmitAndPoll(0, rx);
    assert.equal(rx.status, 0);
    assert.equal(rx.pkts!.length, 2, 'the small buffer and the struct stay with the caller');
    assert.equal(net.outstanding(), 1, 'the good buffer was posted');
    rx = net.rxSubmitAndPoll(0, rx); // the struct is at the front now
    assert.equal(rx.pkts!.length, 2);
    assert.equal(Number(boot.netStats().rxRefused), 2);

    // TX: a frame, a struct, a frame; all with valid lengths.
    let tx = newIo(4);
    const tpk = tx.pkts as RRefDeque<RRefBase>;
    const frame = (): Buf => {
      const b = k.allocBytes(0, 2048) as unknown as Buf;
      b.setU32(0, 0x00000002);
      return b;
    };
    tpk.push(frame());
    tpk.push(k.allocStruct(0, 'NetLink') as RRefBase);
    tpk.push(frame());
    for (let i = 0; i < 3; i++) tx.pktLens!.setU32(i * 4, 60);
    tx = net.txSubmitAndPoll(0, tx);
    assert.equal(tx.status, 0);
    const left = tx.pkts as RRefDeque<RRefBase>;
    assert.equal(left.length, 2, 'the struct and the frame after it stay');
    assert.deepEqual([tx.pktLens!.getU32(0), tx.pktLens!.getU32(4)], [60, 60], 'their lengths, front first');
    assert.equal(Number(boot.netStats().txRefused), 1);
    const d = kernel.get(boot.driverName!)!;
    assert.equal(d.live, true);
    assert.equal(d.faults, 0, 'no fault');
    rx.drop();
    tx.drop();
  } finally {
    await boot.stop();
  }
});
