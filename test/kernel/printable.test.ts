/**
 * A domain's words reach the operator's console only as text: its log lines (in-thread and from a
 * worker) and what it throws (the fault the kernel records and reports, the caller's RpcError)
 * have their control characters escaped, so a domain can neither forge the log lines of another
 * (a line break, then "[nvme] ...") nor drive the terminal (escape sequences).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { printable } from '../../src/kernel/errors.js';
import type { WorkerProbe } from '../../src/interfaces/index.js';
import { bootKernel, info, loadFaulty, rpcFails, TEST_ARTIFACTS, type TestKernel } from './helpers.js';

const WPROBE = join(TEST_ARTIFACTS, 'wprobe.rldom');
const FORGED = 'ok\n[nvme] forged line\u001b[2J\u0007\u009b';
const ESCAPED = 'ok\\u000a[nvme] forged line\\u001b[2J\\u0007\\u009b';
/** Any C0 or C1 control character. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const kernels: TestKernel[] = [];
after(() => {
  for (const t of kernels) t.kernel.shutdown();
});

test('printable escapes every control character and keeps the rest', () => {
  assert.equal(printable(FORGED), ESCAPED);
  assert.equal(printable('plain text: é → ✓'), 'plain text: é → ✓');
  for (let c = 0; c < 0xa0; c++) {
    const s = printable(String.fromCharCode(c));
    assert.equal(CONTROL.test(s), false, `char ${c}`);
  }
});

for (const placement of ['in-thread', 'worker'] as const) {
  test(`a domain's log line (${placement}) reaches the log as one line of text`, async () => {
    const t = bootKernel();
    kernels.push(t);
    t.kernel.load(WPROBE, { name: 'wp', ...(placement === 'worker' ? { placement: 'worker' as const } : {}) });
    const wp = t.kernel.bind<WorkerProbe>('wp');
    await wp.log(FORGED);
    const mine = t.logs.filter((l) => l.startsWith('wp: '));
    assert.deepEqual(mine, [`wp: ${ESCAPED}`]);
  });
}

test('what a domain throws is recorded, reported and passed to its caller escaped', async () => {
  const t = bootKernel();
  kernels.push(t);
  const reported: string[] = [];
  t.kernel.onFault((_d, _cause, message) => void reported.push(message));
  loadFaulty(t, 'fa');
  const fa = t.kernel.bind<{ throwSync(msg: string): number }>('fa');
  const e = await rpcFails(() => fa.throwSync(FORGED), 'panic');
  for (const [what, text] of [['RpcError', e.message], ['lastFault', info(t.kernel, 'fa').lastFault ?? ''], ['onFault', reported[0] ?? '']] as const) {
    assert.ok(text.includes(ESCAPED), `${what}: ${text}`);
    assert.equal(CONTROL.test(text), false, `${what} holds no control character`);
  }
});
