/**
 * Routes (trusted): a shadow's calls passed straight through by the kernel.
 *
 * A shadow wraps a driver and exports the driver's own interface; on its common path it only
 * passes each call on (after entrusting what the call moves, so that a crash gives it back). A
 * route lets the kernel do exactly that without entering the shadow: a caller's call of a routed
 * method goes from the caller's proxy to the driver instance the shadow last got from its
 * Supervisor (current / restart), its RRef argument moved from the caller to the instance in one
 * move and entrusted to the shadow on the way, and the instance's answer moved straight back to
 * the caller. The shadow's code runs only when such a call fails: its hook gets the error and a
 * RoutedCall (what the call moved and where it was), and what the hook answers is the shadow's
 * answer, converted for the caller as any answer of the shadow (proxy.ts, AsyncCall.leg).
 *
 * Decisions (ARCHITECTURE §5 is silent on this):
 *  - only async methods whose parameters are primitives and at most one moved RRef can be
 *    routed: a borrowed argument is the caller's lend to the instance (a hook could not reissue
 *    with it), and a synchronous method would need its recovery before it returns;
 *  - a route is an optimisation of the common path, never the only path: whenever the kernel
 *    cannot route a call (the instance is dead or not the one the shadow holds, a domain is in a
 *    worker, the caller is arming a relay of its own), the call reaches the shadow's own method;
 *  - the call is registered with the shadow (its death fails the caller: the caller called the
 *    shadow) and with the instance (its death runs the hook).
 */
import type { MethodModel } from '../build/idl.js';
import type { Domain } from './domain.js';

/** Why `m` cannot be routed, or null when it can (the IDL compiler and Supervisor.route agree). */
export function routeRefusal(m: MethodModel): string | null {
  if (!m.async) return `${m.name} is synchronous (only async methods can be routed)`;
  let moved = 0;
  for (const p of m.params) {
    const k = p.type.k;
    if (k === 'rref' || k === 'array' || k === 'deque') moved++;
    else if (k !== 'prim') return `${m.name} takes a ${k === 'borrow' ? 'borrowed RRef' : k === 'iface' ? 'domain reference' : 'nullable value'} (${p.name})`;
  }
  return moved > 1 ? `${m.name} moves more than one RRef` : null;
}

/** A shadow's failure hook for one routed method (domain code: its throw is the shadow's panic). */
export type RouteHook = (e: unknown, call: RoutedCallInfo) => unknown;

/** What a hook is told about the failed call (hardened when handed over). */
export interface RoutedCallInfo {
  readonly target: object;
  readonly args: readonly unknown[];
  readonly addr: number;
  readonly capacity: number;
  readonly elements: readonly number[];
}

/** A shadow's routes (Domain.routes of the shadow). */
export interface RouteTable {
  /** The shadow: heir of what routed calls move, owner of the hooks. */
  readonly heir: Domain;
  readonly iface: string;
  /** Per method index of `iface`: the shadow's hook, null for a method not routed. */
  readonly hooks: (RouteHook | null)[];
  /** The instance calls go to (the one the shadow last got) and the proxy the shadow got for it. */
  instance: Domain | null;
  target: object | null;
}
