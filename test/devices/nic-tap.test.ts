/**
 * The tap backend: the native addon is built wherever a C compiler is present and loads; bad
 * input and missing permission or devices are refused with a sentence naming the remedy; and
 * where the machine allows it (root, /dev/net/tun, network namespaces) frames go in and out of a
 * real TAP interface through the driver and l2fwd domains, byte-exact (nic-tap-peer.ts, run in a
 * namespace of its own). Where a capability is missing, the test asserts the refusal instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startNic } from '../../src/devices/nic/index.js';
import { loadTapAddon, openTap, TAP_ADDON, TUN_CLONE } from '../../src/devices/nic/tap.js';

const hasCompiler = ['cc', 'gcc', 'clang'].some((cc) => spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0);
const root = process.getuid?.() === 0;
const phys = new SharedArrayBuffer(1 << 20);

test('tap addon: built when a C compiler is present, and it loads; otherwise tap refuses saying how to enable it', () => {
  if (hasCompiler) {
    assert.ok(existsSync(TAP_ADDON), `the build compiled ${TAP_ADDON}`);
    const a = loadTapAddon();
    for (const f of ['open', 'read', 'write', 'close'] as const) assert.equal(typeof a[f], 'function', f);
    // Bad arguments are a TypeError, never a wild pointer.
    assert.throws(() => a.read(0, new Uint8Array(8), 4, 8), TypeError);
    assert.throws(() => a.write(0, new Uint16Array(8) as unknown as Uint8Array, 0, 2), TypeError);
  } else {
    assert.throws(() => startNic({ phys, backend: { kind: 'tap' } }), /native addon .* not built.*install gcc.*npm run build/);
  }
});

test('tap: a bad interface name or a missing clone device is refused with the reason', () => {
  assert.throws(() => startNic({ phys, backend: { kind: 'tap', ifname: 'no/slash' } }), /interface name "no\/slash" must be 1\.\.15 characters/);
  assert.throws(() => startNic({ phys, backend: { kind: 'tap', ifname: 'x'.repeat(16) } }), /must be 1\.\.15 characters/);
  const refusal = hasCompiler ? /\/nonexistent\/tun does not exist, so this host offers no TUN\/TAP devices/ : /not built/;
  assert.throws(() => startNic({ phys, backend: { kind: 'tap', clonePath: '/nonexistent/tun' } }), refusal);
});

test('tap: without root or CAP_NET_ADMIN, attaching is refused saying what it needs', () => {
  if (!hasCompiler || !root) {
    assert.throws(() => openTap('rltap0'), hasCompiler ? /needs root or CAP_NET_ADMIN|does not exist/ : /not built/);
    return;
  }
  // As root: a child process loads the addon, drops to nobody, then tries.
  const tapUrl = new URL('../../src/devices/nic/tap.js', import.meta.url).href;
  const script = `
    const { loadTapAddon, openTap } = await import(${JSON.stringify(tapUrl)});
    loadTapAddon();
    process.setgid(65534);
    process.setuid(65534);
    try { openTap('rltap0'); console.log('attached'); } catch (e) { console.log(e.message); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  if (existsSync(TUN_CLONE)) assert.match(r.stdout, /permission denied attaching to TAP interface rltap0 .*needs root or CAP_NET_ADMIN/);
  else assert.match(r.stdout, /does not exist, so this host offers no TUN\/TAP devices/);
});

test('tap: frames go in and out of a real TAP interface through the driver and l2fwd domains', { timeout: 120_000 }, () => {
  // Where attaching cannot work, the refusal says why (nothing is attached in this process:
  // a TAP interface is only ever made inside a private network namespace).
  if (!hasCompiler || !existsSync(TUN_CLONE) || !root) {
    const refusal = !hasCompiler ? /not built/ : !existsSync(TUN_CLONE) ? /does not exist/ : /needs root or CAP_NET_ADMIN/;
    assert.throws(() => openTap('rltap0'), refusal);
    return;
  }
  // A private network namespace in which a bridge can be made (util-linux unshare, iproute2 ip).
  const probe = spawnSync('unshare', ['-n', 'ip', 'link', 'add', 'rlprobe0', 'type', 'bridge'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, `root with /dev/net/tun, but no private network namespace with a bridge for the round trip (unshare -n ip link add ... type bridge: ${probe.error ?? probe.stderr})`);
  const peer = fileURLToPath(new URL('./nic-tap-peer.js', import.meta.url));
  const r = spawnSync('unshare', ['-n', process.execPath, peer], { encoding: 'utf8', timeout: 100_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let out: { ok: boolean; sent: number; back: number[]; mismatches: number; details: string[] };
  try {
    out = JSON.parse(line);
  } catch {
    assert.fail(`the tap peer printed no result (status ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  assert.ok(out.ok, `tap round trip failed:\n  ${out.details.join('\n  ')}\n${r.stderr}`);
  assert.equal(out.mismatches, 0);
  assert.equal(out.back.length, 10, 'every frame came back');
  assert.ok(out.back.includes(60) && out.back.includes(1514), `sizes seen: ${out.back}`);
});
