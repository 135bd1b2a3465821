/**
 * deputy: a domain holding the rv6 core's ProgramLoader host capability that passes objects of its
 * own where the loader expects names (test/kernel/host-caps.test.ts).
 */
import type { Probe } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { ProgramLoader } from '../../../src/runtime/rv6host.js';
import type { RRefArray } from '../../../src/runtime/types.js';

export function init(sys: Sys, loader: ProgramLoader): Probe {
  const text = String(sys.config.program);
  const victimId = Number(sys.config.victimId);
  /**
   * A "name" that is a string to the loader and, once the kernel is handed it to terminate,
   * impersonates domain victimId. The kernel hardens it along with the program's sys (its name),
   * so everything the termination writes is an accessor.
   */
  let impersonate = false;
  const ignore = (_v: unknown): void => {};
  const name = {
    toString: () => 'innocent',
    get live() {
      return impersonate;
    },
    get id() {
      return victimId;
    },
    get state() {
      return 'live';
    },
    set state(v: unknown) {
      ignore(v);
    },
    set deathCause(v: unknown) {
      ignore(v);
    },
    set diedAtMs(v: unknown) {
      ignore(v);
    },
    set exportsObj(v: unknown) {
      ignore(v);
    },
    inflight: { drain: () => [] },
    timers: new Set(),
    intervals: new Set(),
    irqs: new Set(),
    get inbound() {
      return [];
    },
  };
  return {
    attempt(which: string) {
      if (which !== 'terminate') return 'unknown';
      impersonate = true;
      loader.terminate(name as unknown as string);
      return 'terminated';
    },
    async attemptAsync(which: string) {
      if (which !== 'load') return 'unknown';
      const r = await loader.load(text, name as unknown as string);
      return typeof r === 'string' ? `refused: ${r}` : 'loaded';
    },
    stash(buf: RRefArray) {
      return buf.getU8(0);
    },
    throwLookalike(): number {
      return 0;
    },
  };
}
