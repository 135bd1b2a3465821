import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withRv6 } from './helpers.js';

test('smoke: init probe writes to the console and returns', async () => {
  await withRv6(async (t) => {
    const status = await t.runInit([['getpid'], ['echo', 'hi'], ['return', 7]]);
    assert.equal(status, 7);
    assert.equal(t.r('getpid'), 1);
    assert.equal(t.r('echo'), 'hi');
  });
});
