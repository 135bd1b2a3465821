/**
 * wrelay: an in-thread domain that imports WorkerProbe from a worker domain and exports it again,
 * forwarding every call (its RRefs move and its borrows are lent onward through two crossings).
 * A failure of the worker reaches it as an RpcError rejection, which, not handled, is its panic.
 */
import type { WorkerProbe } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';

export function init(_sys: Sys, probe: WorkerProbe): WorkerProbe {
  return {
    echo: (s) => probe.echo(s),
    mix: (a, b, flag, nothing) => probe.mix(a, b, flag, nothing),
    config: (key) => probe.config(key),
    log: (msg) => probe.log(msg),
    fill: (n, v) => probe.fill(n, v),
    bump: (buf) => probe.bump(buf),
    sumLater: (buf, ms) => probe.sumLater(buf, ms),
    echoReq: (req) => probe.echoReq(req),
    makeReq: (id, bytes) => probe.makeReq(id, bytes),
    deque: (n) => probe.deque(n),
    hold: (bytes) => probe.hold(bytes),
    keep: (buf) => probe.keep(buf),
    crunch: (n) => probe.crunch(n),
    throwSync: (msg) => probe.throwSync(msg),
    rejectAsync: (msg) => probe.rejectAsync(msg),
    detachRejection: (msg) => probe.detachRejection(msg),
    panic: (reason) => probe.panic(reason),
    spin: (c) => probe.spin(c),
    regexBomb: (n) => probe.regexBomb(n),
    grow: (mb) => probe.grow(mb),
    badResult: () => probe.badResult(),
    returnBorrowed: (buf) => probe.returnBorrowed(buf),
    useAfterMove: () => probe.useAfterMove(),
    attempt: (name) => probe.attempt(name),
  };
}
