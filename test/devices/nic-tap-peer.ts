/**
 * The tap backend end to end, run by nic-tap.test.ts as `unshare -n node nic-tap-peer.js` in a
 * network namespace of its own (so nothing it creates is visible outside, and everything goes
 * away with the process). No IP address is involved: a bridge joins the NIC model's TAP interface
 * and a second TAP interface this script holds itself (the peer).
 *
 *   peer fd --write--> rltap1 --bridge--> rltap0 --> NIC model --> driver domain --> l2fwd domain
 *   peer fd <--read--- rltap1 <--bridge-- rltap0 <-- NIC model <-- driver domain <-- (MACs swapped)
 *
 * Prints one JSON line: { ok, sent, back, mismatches, details }.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { bootNet } from '../../src/host/net.js';
import { closeTap, loadTapAddon, openTap } from '../../src/devices/nic/tap.js';

const NIC_MAC = [2, 0, 0, 0, 0, 1];
const PEER_MAC = [2, 0, 0, 0, 0, 0x77];
const ETHERTYPE = 0x88b5; // IEEE local experimental: nothing else in the namespace sends it
const SIZES = [42, 60, 61, 64, 128, 255, 512, 1000, 1499, 1514];

const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

function frame(len: number, seq: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(NIC_MAC, 0);
  f.set(PEER_MAC, 6);
  f[12] = ETHERTYPE >>> 8;
  f[13] = ETHERTYPE & 255;
  f[14] = seq;
  for (let i = 15; i < len; i++) f[i] = (seq * 17 + i * 29) & 255;
  return f;
}

/** What l2fwd sends back for `f`: padded to 60 bytes (a wire's minimum), MACs swapped. */
function expected(f: Uint8Array): Uint8Array {
  const e = new Uint8Array(Math.max(60, f.length));
  e.set(f);
  e.set(f.subarray(6, 12), 0);
  e.set(f.subarray(0, 6), 6);
  return e;
}

async function main(): Promise<void> {
  // Keep the namespace quiet: no IPv6 autoconfiguration frames on the new interfaces.
  for (const k of ['all', 'default']) {
    try {
      writeFileSync(`/proc/sys/net/ipv6/conf/${k}/disable_ipv6`, '1');
    } catch {
      // no IPv6 in this kernel: nothing to silence
    }
  }
  ip('link', 'add', 'rlbr0', 'type', 'bridge');
  const addon = loadTapAddon();
  const peer = openTap('rltap1');
  const boot = await bootNet({ backend: { kind: 'tap', ifname: 'rltap0' }, app: 'l2fwd', appConfig: { pool: 256 } });
  const details: string[] = [];
  let mismatches = 0;
  const back: number[] = [];
  try {
    for (const dev of ['rltap0', 'rltap1']) ip('link', 'set', dev, 'master', 'rlbr0');
    for (const dev of ['rltap0', 'rltap1', 'rlbr0']) ip('link', 'set', dev, 'up');
    const frames = SIZES.map((n, i) => frame(n, i));
    const buf = new Uint8Array(2048);
    const got = new Map<number, Uint8Array>();
    const app = boot.app!;
    let sent = 0;
    const deadline = Date.now() + 20_000;
    while (got.size < frames.length && Date.now() < deadline) {
      // The bridge may take a moment to forward on fresh ports: resend what has not come back.
      for (let i = 0; i < frames.length; i++) {
        if (got.has(i)) continue;
        const r = addon.write(peer.fd, frames[i]!, 0, frames[i]!.length);
        if (r === frames[i]!.length) sent++;
      }
      const until = Date.now() + 200;
      while (Date.now() < until && got.size < frames.length) {
        app.run('fwd', 32, 5);
        for (let r = addon.read(peer.fd, buf, 0, buf.length); r > 0; r = addon.read(peer.fd, buf, 0, buf.length)) {
          if (r < 15 || ((buf[12]! << 8) | buf[13]!) !== ETHERTYPE) continue;
          const seq = buf[14]!;
          if (seq >= frames.length || got.has(seq)) continue;
          const want = expected(frames[seq]!);
          const have = buf.slice(0, r);
          got.set(seq, have);
          back.push(r);
          if (Buffer.compare(have, want) !== 0) {
            mismatches++;
            details.push(`frame ${seq} (${SIZES[seq]} bytes): got ${r} bytes ${Buffer.from(have.subarray(0, 20)).toString('hex')}..., want ${want.length} ${Buffer.from(want.subarray(0, 20)).toString('hex')}...`);
          }
        }
        await new Promise((res) => setTimeout(res, 1));
      }
    }
    const missing = frames.map((_, i) => i).filter((i) => !got.has(i));
    if (missing.length > 0) details.push(`never came back: frames ${missing.join(', ')}; net ${JSON.stringify(boot.netStats())}; app ${JSON.stringify(boot.appStats())}`);
    console.log(JSON.stringify({ ok: missing.length === 0 && mismatches === 0, sent, back, mismatches, details }));
  } finally {
    await boot.stop();
    closeTap(peer.fd);
  }
}

main().catch((e: unknown) => {
  console.log(JSON.stringify({ ok: false, sent: 0, back: [], mismatches: 0, details: [String((e as Error)?.stack ?? e)] }));
  process.exitCode = 1;
});
