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
 * answer, converted for the caller as any answer of the shadow (proxy.ts: AsyncCall.leg for an
 * async method; for a synchronous one the hook runs before the call returns, routedFailed).
 *
 * Decisions (ARCHITECTURE §5 is silent on this):
 *  - only methods of at most MAX_ROUTED_PARAMS parameters, primitives and at most one moved RRef,
 *    can be routed (a borrowed argument is the caller's lend to the instance: a hook could not
 *    reissue with it);
 *    a synchronous method only if it moves one (its hook must answer at once, from what the
 *    moved value held, and a synchronous method of primitives is no hot path worth a route);
 *  - a route may keep a record for its shadow (RouteRecord): one u32 field of each answer, by
 *    the call's first argument — what a shadow would otherwise read on every call (the NIC
 *    shadow: how many buffers the driver holds per queue), written where the shadow reads it;
 *  - a route is an optimisation of the common path, never the only path: whenever the kernel
 *    cannot route a call (the instance is dead or not the one the shadow holds, a domain is in a
 *    worker, the caller is arming a relay of its own), the call reaches the shadow's own method;
 *  - the call is registered with the shadow (its death fails the caller: the caller called the
 *    shadow) and with the instance (its death runs the hook).
 */
import type { MethodModel } from '../build/idl.js';
import type { LayoutSpec } from './layout.js';
import type { Domain } from './domain.js';
import type { RoutedCall } from '../runtime/shadow.js';

/** Arguments a routed call keeps for its hook, each in a field of the call's record (no list per call). */
export const MAX_ROUTED_PARAMS = 6;

/** Why `m` cannot be routed, or null when it can (the IDL compiler and Supervisor.route agree). */
export function routeRefusal(m: MethodModel): string | null {
  if (m.params.length > MAX_ROUTED_PARAMS) return `${m.name} takes more than ${MAX_ROUTED_PARAMS} arguments`;
  let moved = 0;
  for (const p of m.params) {
    const k = p.type.k;
    if (k === 'rref' || k === 'array' || k === 'deque') moved++;
    else if (k !== 'prim') return `${m.name} takes a ${k === 'borrow' ? 'borrowed RRef' : k === 'iface' ? 'domain reference' : 'nullable value'} (${p.name})`;
  }
  if (moved > 1) return `${m.name} moves more than one RRef`;
  return !m.async && moved === 0 ? `${m.name} is synchronous and moves no RRef (a synchronous method can be routed only if it moves one)` : null;
}

/** RRef fields of a moved struct whose deque lengths a hook is told (RoutedCallInfo.lengths). */
export const MAX_LENGTHS = 16;

/**
 * Where the deques of a routed method's moved struct are, for the lengths its hook is told: the
 * struct's RRef fields (`fields`, at most MAX_LENGTHS) and, in pairs, each deque field's index
 * among them and byte offset (`at`). Worked out once per route, so a call reads only the deques.
 */
export interface DequeFields {
  readonly fields: number;
  readonly at: Int32Array;
}

/** DequeFields of `m`'s moved struct (null when it moves none; `at` empty for one that holds no deque). */
export function dequeFieldsOf(m: MethodModel, layouts: readonly LayoutSpec[]): DequeFields | null {
  const moved = m.params.find((p) => p.type.k === 'rref')?.type;
  const layout = moved?.k === 'rref' ? layouts.find((l) => l.name === moved.layout) : undefined;
  if (layout === undefined) return null;
  const refs = layout.fields.filter((f) => f.kind === 'rref').slice(0, MAX_LENGTHS);
  const at: number[] = [];
  refs.forEach((f, k) => {
    if (f.holds === 'deque') at.push(k, f.offset);
  });
  return { fields: refs.length, at: Int32Array.from(at) };
}

/** A shadow's failure hook for one routed method (domain code: its throw is the shadow's panic). */
export type RouteHook = (e: unknown, call: RoutedCallInfo) => unknown;

/** What a hook is told about the failed call (hardened when handed over): the domain runtime's RoutedCall, its one definition. */
export type RoutedCallInfo = RoutedCall<object>;

/**
 * A route's record (Supervisor.route's `record`): after every routed call answered with a struct,
 * the u32 field at byte `offset` of the answer is written to the shadow's u32 array `slot`
 * (generation `gen`: written only while the shadow still owns it unmoved) at index
 * `method * keys + key`, where `key` is the call's first argument (an integer below `keys`).
 */
export interface RouteRecord {
  readonly slot: number;
  readonly gen: number;
  readonly keys: number;
  /** Per method index: the field's offset in the method's answer, -1 for a method not recorded. */
  readonly offsets: readonly number[];
}

/** A shadow's routes (Domain.routes of the shadow). */
export interface RouteTable {
  /** The shadow: heir of what routed calls move, owner of the hooks. */
  readonly heir: Domain;
  readonly iface: string;
  /** Per method index of `iface`: the shadow's hook, null for a method not routed. */
  readonly hooks: (RouteHook | null)[];
  /** Per method index: how many arguments its hook is told (0 for a method that takes no primitive). */
  readonly told: readonly number[];
  /** Per method index: where its moved struct's deques are (null: none). */
  readonly deques: readonly (DequeFields | null)[];
  readonly record: RouteRecord | null;
  /** The instance calls go to (the one the shadow last got) and the proxy the shadow got for it. */
  instance: Domain | null;
  target: object | null;
}
