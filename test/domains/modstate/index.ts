/**
 * modstate: a test domain with module-level state, for the instance tests
 * (test/kernel/instances.test.ts). Every instance of one artifact runs the same evaluated code in
 * the same compartment (src/kernel/isolation.ts); this domain checks from the inside that each
 * instance still gets its own module state, and that an instance can leave nothing behind for
 * the next one in what instances do share (the compartment's globals and evaluators).
 *
 * Its export is itself module-level state (so a WeakRef to it tells whether a dead instance's
 * module state is still reachable). Attempts (Probe.attempt):
 *  - 'count': increments a module-level counter, returns it;
 *  - 'tally': increments a field of an instance of a module-level class, returns it;
 *  - 'leave-mark': tries to store a mark in everything instances share; returns the places it
 *    could write ('' if none);
 *  - 'find-mark': returns the places where a mark is found ('' if none);
 *  - 'factory': tries to reach the function that made this instance (the evaluated bundle);
 *  - 'hooks': uses what the factory was given (its `arguments`): the deadline hooks with this
 *    instance's token and with forged ones; says what the token and hooks are.
 */
import type { Probe } from '../../../src/interfaces/index.js';

const MARK = '__modstate_mark';

let count = 0;

class Tally {
  n = 0;
}
const tally = new Tally();

/** What every instance of this artifact shares, by name. */
const shared = (): [string, unknown][] => {
  const G = globalThis as Record<string, unknown>;
  return [
    ['globalThis', globalThis],
    ['Function', G.Function],
    ['eval', G.eval],
    ['Compartment', G.Compartment],
    ['Object.prototype', Object.prototype],
    ['Function.prototype', Function.prototype],
    ['TextEncoder', G.TextEncoder],
    ['Atomics', G.Atomics],
    ['Float64Array', G.Float64Array],
  ];
};

const leaveMark = (): string => {
  const wrote: string[] = [];
  for (const [name, place] of shared()) {
    if ((typeof place !== 'object' && typeof place !== 'function') || place === null) continue;
    let ok = false;
    try {
      ok = Reflect.set(place, MARK, count) || Reflect.defineProperty(place, MARK, { value: count });
    } catch {
      ok = false;
    }
    if (ok) wrote.push(name);
  }
  return wrote.join(',');
};

const findMark = (): string =>
  shared()
    .filter(([, place]) => (typeof place === 'object' || typeof place === 'function') && place !== null && MARK in place)
    .map(([name]) => name)
    .join(',');

/** The factory is an anonymous strict function: no name, no arguments.callee, no caller. */
const reachFactory = (): string => {
  try {
    return typeof (function (this: unknown) {
      return (arguments as unknown as { callee: { caller: unknown } }).callee.caller;
    })();
  } catch (e) {
    return `blocked: ${(e as Error).name}`;
  }
};

// The bundle's top level runs in the factory the kernel calls (isolation.ts), so `arguments` here
// is what the factory was given: the shared deadline hooks and this instance's token.
// @ts-expect-error -- TypeScript knows no `arguments` outside a function; a bundle's top level has one.
const factoryArgs: unknown[] = Array.from(arguments as ArrayLike<unknown>);

/** What the factory's arguments let an instance do: check its own deadline, nothing more. */
const useHooks = (): string => {
  const [tick, aw, token] = factoryArgs as [(t: unknown) => number, (t: unknown, v: unknown) => unknown, object];
  const out = [`own tick ${tick(token)}`, `own aw ${String(aw(token, 'v'))}`];
  for (const [what, forged] of [['forged token', {}], ['no token', undefined]] as const) {
    try {
      out.push(`${what} ${tick(forged)}`);
    } catch (e) {
      out.push(`${what} blocked: ${(e as Error).name}`);
    }
  }
  out.push(`token ${Object.isFrozen(token) && Reflect.ownKeys(token).length === 0 ? 'frozen and empty' : 'has content'}`);
  // Its prototype must not lead back to what made it (which could make or read tokens).
  out.push(`its constructor ${(Object.getPrototypeOf(token) as { constructor: unknown }).constructor === Object ? 'Object' : 'another'}`);
  out.push(`hooks ${Object.isFrozen(tick) && Object.isFrozen(aw) ? 'frozen' : 'writable'}`);
  return out.join('; ');
};

const attempt = (name: string): string => {
  switch (name) {
    case 'count':
      return String(++count);
    case 'tally':
      return String(++tally.n);
    case 'leave-mark':
      return leaveMark();
    case 'find-mark':
      return findMark();
    case 'factory':
      return reachFactory();
    case 'hooks':
      return useHooks();
    default:
      return `unknown attempt ${name}`;
  }
};

const probe: Probe = {
  attempt,
  attemptAsync: async (name: string) => attempt(name),
  stash: () => 0,
  throwLookalike: () => 0,
};

export function init(): Probe {
  return probe;
}
