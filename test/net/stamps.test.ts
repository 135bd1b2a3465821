/**
 * NetIo.restarts and NetIo.pktsLost (src/interfaces/net.ts) on every Net: each answer carries the
 * answering instance's restarts (0: none here) and pktsLost 0 (nothing of the call died), whatever
 * the NetIo carried in — on RX, TX, a refused call and drain, on the driver domain, through the
 * NIC shadow, and on nullnet (which once left them as they came).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNet } from '../../src/host/net.js';
import type { NetIo } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { hostIo } from './helpers.js';

type Deque = RRefDeque<RRefArray<number>>;

for (const path of ['domain', 'shadow', 'nullnet'] as const) {
  test(`${path}: every answer stamps restarts and pktsLost over what the NetIo carried in`, async () => {
    const boot = await bootNet({ backend: path === 'nullnet' ? 'nullnet' : { kind: 'loopback' }, shadow: path === 'shadow', app: null });
    const { kernel, net } = boot;
    /** `io` with stale stamps, as a NetIo reused from elsewhere may carry. */
    const stale = (io: RRef<NetIo>): RRef<NetIo> => {
      io.restarts = 77;
      io.pktsLost = 9;
      return io;
    };
    const stamped = (io: RRef<NetIo>, what: string): void => {
      assert.equal(io.restarts, 0, `${what}: restarts`);
      assert.equal(io.pktsLost, 0, `${what}: pktsLost`);
    };
    try {
      let rx = stale(hostIo(kernel, 16));
      for (let i = 0; i < 4; i++) (rx.pkts as Deque).push(kernel.kit.allocBytes(0, 2048) as never);
      rx = net.rxSubmitAndPoll(0, rx);
      assert.equal(rx.status, 0);
      stamped(rx, 'RX');
      let tx = stale(hostIo(kernel, 16));
      for (let i = 0; i < 2; i++) {
        (tx.pkts as Deque).push(kernel.kit.allocBytes(0, 2048) as never);
        tx.pktLens!.setU32(i * 4, 60);
      }
      tx = net.txSubmitAndPoll(0, tx);
      assert.equal(tx.status, 0);
      stamped(tx, 'TX');
      // Refused: a queue no Net here has.
      tx = net.txSubmitAndPoll(99, stale(tx));
      assert.equal(tx.status, -22);
      stamped(tx, 'refused TX');
      let d = stale(hostIo(kernel, 16));
      d = net.drain(d);
      assert.equal(d.status, 0);
      stamped(d, 'drain');
      for (const io of [rx, tx, d]) {
        for (const q of [io.pkts, io.collect] as Deque[]) for (let b = q.pop(); b; b = q.pop()) b.drop();
        io.drop();
      }
    } finally {
      await boot.stop();
    }
  });
}
