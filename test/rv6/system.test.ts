/**
 * rv6 on the NVMe stack (controller on an image file, nvme driver, block shadow): files survive a
 * shutdown and a reboot on the same image; a crash of the nvme driver injected with kcrash is
 * recovered by the shadow, unseen by programs; shutdown ends running processes (init's status
 * STATUS_KILLED) and boot refuses a second init; stop() is idempotent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERRNO, O_CREATE, O_RDONLY, O_RDWR, STATUS_KILLED } from '../../src/interfaces/rv6.js';
import { expectResults, probeArgv, Rv6Test, rv6Image, withRv6 } from './helpers.js';

test('NVMe + shadow: a driver crash is recovered unseen; files survive shutdown and reboot', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rv6-sys-'));
  try {
    const file = join(dir, 'disk.img');
    writeFileSync(file, rv6Image());
    await withRv6(async (t) => {
      assert.equal(t.sys.driverName, 'nvme');
      await t.runInit([
        ['f=open', '/kept', O_CREATE | O_RDWR],
        ['w1=write', '$f', 'before the crash, '],
        ['k=kcrash', 'nvme', 0],
        ['w2=write', '$f', 'after the crash'],
        ['mkdir', '/dir'],
        ['d=kdomains'],
      ]);
      expectResults(t, { k: 0, w1: 18, w2: 15 });
      assert.match(t.r('d'), /^nvme +live +thread +\d+ +1 +1 /m, 'the driver faulted once and was restarted once');
    }, { file });
    await withRv6(async (t) => {
      await t.runInit([['f=open', '/kept', O_RDONLY], ['r=read', '$f', 100], ['s=stat', '/dir']]);
      expectResults(t, { r: { text: 'before the crash, after the crash' }, s: { err: 0 } });
    }, { file });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shutdown ends running processes; boot refuses a second init and works after a failed one; stop is idempotent', async () => {
  const t = await Rv6Test.boot();
  try {
    assert.equal(await t.sys.core.boot('/bin/nope', 'nope'), -ERRNO.ENOENT);
    assert.equal(await t.sys.core.boot('/bin/rv6_probe', probeArgv([['hang']])), 0);
    assert.equal(await t.sys.core.boot('/bin/rv6_probe', probeArgv([])), -ERRNO.EBUSY);
    assert.equal(await t.sys.core.shutdown(), 0);
    assert.equal(await t.sys.core.waitInit(), STATUS_KILLED);
    assert.equal(t.domain('rv6_probe.1')?.state, 'dead');
    assert.equal(await t.sys.core.boot('/bin/rv6_probe', probeArgv([])), -ERRNO.EBUSY, 'no boot after shutdown');
  } finally {
    await t.stop();
    await t.stop();
  }
  assert.ok(t.kernel.list().every((d) => d.state === 'dead'));
});
