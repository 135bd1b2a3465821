/**
 * The trusted build's deadline checks (instrument.ts), run as plain functions with a counting
 * $rl_tick in place of the kernel's: how often each kind of code reads the clock (loops once per
 * 1024 iterations of an activation, function entries once per 1024 calls, module-level and
 * constructor loops per 1024 iterations through the shared counter, constructors and instance
 * field initializers as entries), that a tick that throws keeps
 * throwing (the same activation's loop, other functions' entries: a domain that catches its
 * deadline panic cannot run on), and that the checks' names are refused in domain source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, InstrumentError } from '../../src/build/instrument.js';

interface Probe {
  ticks: number;
  /** Make every tick from now on throw (the domain died). */
  kill(): void;
  fns: Record<string, (...a: any[]) => any>;
}

/**
 * `source` instrumented and evaluated as a bundle does: $rl_n in the enclosing scope, $rl_tick
 * from the kernel (here, a counter that refuses any check not naming the instance's token $rl_i).
 */
function load(source: string, names: string[]): Probe {
  const code = instrument(source, 'probe.ts');
  let dead = false;
  const p: Probe = { ticks: 0, kill: () => void (dead = true), fns: {} };
  const token = {};
  const tick = (instance: object): number => {
    assert.equal(instance, token, "a check passes its instance's token");
    p.ticks++;
    if (dead) throw new Error('dead');
    return 1024;
  };
  p.fns = new Function('$rl_tick', '$rl_i', `"use strict"; let $rl_n = 0; ${code}; return { ${names.join(', ')} };`)(tick, token);
  return p;
}

test('a loop reads the clock once per 1024 iterations of its activation, through a counter of its own', () => {
  const p = load(`function spin(n: number) { let s = 0; for (let i = 0; i < n; i++) s += i; return s; }`, ['spin']);
  p.fns.spin!(1); // the entry's first check reads the clock (the shared counter starts empty)
  const base = p.ticks;
  assert.equal(p.fns.spin!(10 * 1024), 10 * 1024 * (10 * 1024 - 1) / 2);
  assert.equal(p.ticks - base, 10, 'ten batches of 1024 iterations, the entry no tick (its budget is full)');
  const code = instrument(`function spin(n: number) { for (let i = 0; i < n; i++) {} }`, 'probe.ts');
  assert.equal(code.match(/let \$rl_l = 0/g)?.length, 1, code);
});

test('the loops of one activation share its counter; a nested function counts its own', () => {
  const p = load(
    `function nested(n: number) { let s = 0; for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s++; const inner = () => { let k = 0; while (k < 100) k++; return k; }; return s + inner(); }`,
    ['nested'],
  );
  p.fns.nested!(1);
  const base = p.ticks;
  p.fns.nested!(64); // 64 outer + 64 * 64 inner iterations: 4160, four batches
  // ... and the arrow's entry after them refills the shared counter the loop checks emptied.
  assert.equal(p.ticks - base, 5);
  const code = instrument(`function f() { for (;;) { const g = () => { for (;;) {} }; g(); } }`, 'probe.ts');
  assert.equal(code.match(/let \$rl_l = 0/g)?.length, 2, 'one counter in f, one in the arrow');
});

test('function entries read the clock once per 1025 calls: 1024 of budget, and the one that finds it empty (a short loop in a called function does not read it)', () => {
  const p = load(`function short() { let s = 0; for (let i = 0; i < 10; i++) s += i; return s; }`, ['short']);
  p.fns.short!();
  const base = p.ticks;
  for (let i = 0; i < 3 * 1025; i++) p.fns.short!();
  assert.equal(p.ticks - base, 3);
});

test('loops at module level and in constructors count on the shared counter, as entries do', () => {
  const code = instrument(`let n = 0; for (let i = 0; i < 5; i++) n++; class C { constructor() { let k = 0; while (k < 3) k++; } }`, 'probe.ts');
  assert.doesNotMatch(code, /\$rl_l/, 'no local counter where none can go first');
  assert.equal(code.match(/--\$rl_n < 0/g)?.length, 3, 'the module loop, the constructor loop and the constructor entry');
  const p = load(`class C { k = 0; constructor(n: number) { while (this.k < n) this.k++; } }`, ['C']);
  const C = p.fns.C as unknown as new (n: number) => unknown;
  new C(1);
  const base = p.ticks;
  new C(3 * 1025);
  assert.equal(p.ticks - base, 3);
});

test('recursion only through `new` reaches the clock: constructors and instance field initializers are entries', () => {
  // Each construction makes two more: 2^13 - 1 of them, no function or method call among them.
  const p = load(
    `class Tree { constructor(d: number) { if (d > 0) { new Tree(d - 1); new Tree(d - 1); } } }
     let depth = 0;
     class Wide extends Array { static made = 0; left = depth < 12 ? (depth++, new Wide()) : null; right = (Wide.made++, depth < 12 ? new Wide() : null); }`,
    ['Tree', 'Wide'],
  );
  const Tree = p.fns.Tree as unknown as new (d: number) => unknown;
  new Tree(0);
  let base = p.ticks;
  new Tree(12);
  assert.ok(p.ticks - base >= 7, `${p.ticks - base} ticks for 8191 constructors`);
  // Wide has no constructor of its own (Array's runs): only its first field initializer checks.
  const Wide = p.fns.Wide as unknown as (new () => unknown) & { made: number };
  base = p.ticks;
  for (let i = 0; i < 3 * 1025; i++) new Wide();
  assert.equal(Wide.made, 3 * 1025 + 12);
  assert.ok(p.ticks - base >= 3, `${p.ticks - base} ticks for ${Wide.made} field initializations`);
  p.kill();
  assert.throws(() => { for (;;) new Tree(12); }, /dead/, 'a dead domain stops inside the recursion');
  assert.throws(() => { for (;;) new Wide(); }, /dead/);
  const code = instrument(`class S { static a = 1; b; c = 2; d = 3; }`, 'probe.ts');
  assert.equal(code.match(/--\$rl_n < 0/g)?.length, 1, 'one check per construction, in the first instance initializer: ' + code);
  assert.match(code, /c = \(--\$rl_n < 0/);
});

test('a tick that throws keeps throwing: the same activation\'s next back-edge, and every function entry', () => {
  const p = load(
    `function catching(rounds: number) { let caught = 0; for (;;) { try { for (;;) {} } catch { if (++caught === rounds) return caught; } } }
     function other() { return 1; }`,
    ['catching', 'other'],
  );
  p.fns.other!();
  // Alive: the inner loop never ends, so only a throwing tick gets out of it.
  p.kill();
  const before = p.ticks;
  assert.throws(() => p.fns.catching!(1e9), /dead/, 'the outer back-edge throws at once after the first catch');
  assert.ok(p.ticks - before <= 3, `${p.ticks - before} ticks: every check after the first throw ticks (and throws) at once`);
  assert.throws(() => p.fns.other!(), /dead/, 'an entry after a throwing tick throws');
  assert.throws(() => p.fns.other!(), /dead/);
});

test('identifiers beginning with $rl_ are refused in domain source, with where they are', () => {
  for (const [src, name] of [
    ['function f() { let $rl_n = 1e9; for (;;) {} }', '$rl_n'],
    ['export const t = () => $rl_tick();', '$rl_tick'],
    ['const o = { $rl_l: 1 }; export const v = o.$rl_l;', '$rl_l'],
  ] as const) {
    assert.throws(
      () => instrument(src, 'dom/index.ts'),
      (e: unknown) => e instanceof InstrumentError && e.message.includes(`dom/index.ts:1:`) && e.message.includes(`the name ${name} is reserved`),
      src,
    );
  }
});
