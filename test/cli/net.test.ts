/**
 * `redleaf net`, run as a child process on the built CLI: maglev on pktgen (its live rate lines,
 * the backend count it was given, a million flows by default), l2fwd on loopback behind the NIC
 * shadow with the driver crashed under it (restarts shown, no error reaches the app, the loop
 * keeps forwarding), the same without the shadow stopping at the driver's death with what to add,
 * and bad arguments refused with a message naming the option.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './run-cli.js';

interface NetRun {
  status: number | null;
  lines: string[];
  stderr: string;
  /** The app's stats from the closing `done:` line. */
  stats: Record<string, number>;
  forwarded: number;
}

function net(args: string[]): NetRun {
  const r = runCli(['net', ...args]);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  const done = /^done: (\d+) frames forwarded, app stats (\{.*\})$/.exec(lines.at(-1) ?? '');
  return { status: r.status, lines, stderr: r.stderr, stats: done ? JSON.parse(done[2]!) : {}, forwarded: done ? Number(done[1]) : -1 };
}

/** The rate lines (`  1.0 s  rx 1.234 Mpps  tx ...`): one a second, and one for the run's last stretch. */
const rateLines = (r: NetRun): string[] => r.lines.filter((l) => /^\s+\d+\.\d s {2}rx \d+\.\d{3} Mpps {2}tx \d+\.\d{3} Mpps/.test(l));

test('net maglev on pktgen: live rates, the backends asked for, a million flows by default', () => {
  const r = net(['maglev', '--backend', 'pktgen', '--seconds', '2', '--backends', '4']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.lines[0]!, /^maglev over 4 backends \(the NIC's flow hash\) on pktgen, 1 queue\(s\), batch 32, poll mode/);
  const rates = rateLines(r);
  assert.ok(rates.length >= 1 && rates.length <= 2, `a rate line each second:\n${r.lines.join('\n')}`);
  // The run's last stretch has its line (within the 0.1 s under which a stretch is not reported).
  const lastAt = Number(/^\s+(\d+\.\d) s/.exec(rates.at(-1)!)![1]);
  assert.ok(lastAt >= 1.9, `the last line covers the run's end: ${rates.at(-1)}`);
  assert.ok(r.forwarded > 0 && r.stats.rxFrames! >= r.forwarded, `frames forwarded: ${r.lines.at(-1)}`);
  assert.equal(r.stats.rpcErrors, 0);
  // pktgen's flows rotate, so the flow cache holds about as many flows as frames seen, up to 2^20:
  // more than the 65,536 flows the default once was.
  assert.ok(r.stats.flows! > 65536, `flows ${r.stats.flows} of ${r.stats.rxFrames} frames`);
});

test('net maglev --rx-hash software: the balancer hashes each header itself, and says so', () => {
  const r = net(['maglev', '--backend', 'pktgen', '--seconds', '1', '--flows', '4096', '--rx-hash', 'software']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.lines[0]!, /^maglev over 16 backends \(its own flow hash\) on pktgen/);
  assert.ok(r.forwarded > 0 && r.stats.dropped! < r.forwarded, `frames forwarded: ${r.lines.at(-1)}`);
  assert.ok(r.stats.flows! > 0, `flows tracked: ${r.lines.at(-1)}`);
});

test('net maglev --drop-backend-every: backend-set changes under traffic, said as they happen, forwarding on', () => {
  const r = net(['maglev', '--backend', 'pktgen', '--backends', '3', '--drop-backend-every', '0.5', '--seconds', '1.8', '--flows', '65536']);
  assert.equal(r.status, 0, r.stderr);
  const drops = r.lines.filter((l) => /^\s+\d+\.\d s {2}backends \d+ -> \d+ \(\d+ flows were tracked\)(; the last one stays)?$/.test(l));
  // Two changes in the first 1.8 s, and none after the second: the last backend is never removed.
  assert.equal(drops.length, 2, `a line per change:\n${r.lines.join('\n')}`);
  assert.match(drops[0]!, /backends 3 -> 2 \(\d+ flows were tracked\)$/);
  assert.match(drops[1]!, /backends 2 -> 1 \(\d+ flows were tracked\); the last one stays$/);
  assert.equal(r.stats.rpcErrors, 0);
  assert.ok(r.forwarded > 0, r.lines.at(-1));
});

test('net l2fwd on loopback behind the shadow, the driver crashed under it: restarts shown, no error, frames still forwarded', () => {
  const r = net(['l2fwd', '--backend', 'loopback', '--shadow', '--crash-every', '0.3', '--seconds', '2.2']);
  assert.equal(r.status, 0, r.stderr);
  const rates = rateLines(r);
  assert.ok(rates.length >= 2, r.lines.join('\n'));
  const restarts = Number(/restarts (\d+)/.exec(rates.at(-1)!)?.[1]);
  assert.ok(restarts >= 1, `the driver was restarted: ${rates.at(-1)}`);
  assert.equal(r.stats.rpcErrors, 0, 'the shadow hid every crash from the app');
  const last = Number(/rx (\d+\.\d+) Mpps/.exec(rates.at(-1)!)![1]);
  assert.ok(last > 0, `still forwarding in the last second: ${rates.at(-1)}`);
});

test('net refuses bad arguments with a message naming them', () => {
  const cases: [string[], RegExp][] = [
    [['maglev', '--backends', '0'], /--backends must be a whole number in 1\.\.65536/],
    [['maglev', '--flows', '0'], /--flows must be a whole number/],
    [['l2fwd', '--batch', '1.5'], /--batch must be a whole number in 1\.\.1024/],
    [['l2fwd', '--rate', 'fast'], /--rate must be 'unpaced', 'line' or frames per second/],
    [['l2fwd', '--rate', '0'], /--rate must be 'unpaced', 'line' or frames per second/],
    [['l2fwd', '--rate', '50000000'], /pktgen rate 50000000 is above 10 GbE line rate for 60-byte frames \(14880952 frames per second\)/],
    [['l2fwd', '--rate', '1000000', '--frame-size', '1514'], /pktgen rate 1000000 is above 10 GbE line rate for 1514-byte frames/],
    [['l2fwd', '--seconds', '0'], /--seconds must be a number in 0\.1\.\.86400, got "0"/],
    [['l2fwd', '--backend', 'wire'], /unknown backend "wire"; try pktgen, loopback or tap/],
    // Names an object has by inheritance are no backends either (they crashed the NIC's boot).
    [['l2fwd', '--backend', 'constructor'], /unknown backend "constructor"; try pktgen, loopback or tap/],
    [['l2fwd', '--backend', '__proto__'], /unknown backend "__proto__"; try pktgen, loopback or tap/],
    [['router'], /unknown net app "router"; try l2fwd or maglev/],
    [['l2fwd', '--drop-backend-every', '1'], /--drop-backend-every is for maglev, not l2fwd/],
    [['l2fwd', '--backends', '4'], /--backends is for maglev, not l2fwd/],
    [['l2fwd', '--rx-hash', 'software'], /--rx-hash is for maglev, not l2fwd/],
    [['maglev', '--rx-hash', 'crc'], /--rx-hash must be 'nic' \(the NIC's RSS hash of each frame\) or 'software'/],
    // An option of another backend is refused, not ignored.
    [['l2fwd', '--backend', 'loopback', '--rate', 'line'], /--rate is for the pktgen backend, not loopback/],
    [['maglev', '--backend', 'loopback', '--flows', '8'], /--flows is for the pktgen backend, not loopback/],
    [['l2fwd', '--seed', '8'], /--seed is for the loopback backend, not pktgen/],
    [['l2fwd', '--ifname', 'tap1'], /--ifname is for the tap backend, not pktgen/],
    [['l2fwd', '--backend', 'tap', '--frame-size', '100'], /--frame-size is for the pktgen and loopback backends, not tap/],
    [['maglev', '--backends', '1', '--drop-backend-every', '1'], /--drop-backend-every needs --backends of 2 or more \(got 1\)/],
  ];
  for (const [args, message] of cases) {
    const r = net(args);
    assert.notEqual(r.status, 0, `${args.join(' ')} must fail`);
    assert.match(r.stderr, message);
  }
});

test('net with --crash-every but no --shadow: the run stops at the driver\'s death, saying why and what to add', () => {
  // Every 0.3 s: the app's own call meets the dead driver. Every 1 s: the crash falls due with the
  // first line of rates, whose statistics call is the first to meet it.
  for (const every of ['0.3', '1']) {
    const r = net(['l2fwd', '--backend', 'pktgen', '--seconds', '5', '--crash-every', every]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /the NIC driver nic died \(panic: injected fault.*\); without --shadow nothing restarts it \(add --shadow/, r.stderr);
    assert.doesNotMatch(r.stderr, /exports nothing|call nic\.stats failed/);
  }
});
