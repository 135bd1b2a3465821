/**
 * Process system calls (xv6's sysproc.c) and the life cycle of a process: starting a program
 * image, its end whatever the cause, exec's replacement of the image.
 *
 * How a process ends — return from main, exit(), kill(), Ctrl-C, a crash of its domain — is one
 * procedure (`end`): decide the status (the first cause wins), stop its image (terminate the
 * domain, then cancel the image's blocked calls so each settles and nothing of the dead domain
 * stays reachable), close its descriptors (pipes see EOF/EPIPE at once), release its current
 * directory, then make it a zombie for its parent's wait (its own children go to init).
 *
 * Decisions:
 *  - main's resolution is the exit status, clamped to 0–255 (a non-number is the program's fault:
 *    the kernel turns it into a crash); a rejection of main that the core did not cause (it did
 *    not kill or end the process) is a crash of the domain: STATUS_CRASHED;
 *  - a process ending by its own call (exit, kill of itself) has its domain terminated from a
 *    timer, not inside that call, so the call returns into a still-live domain; the call itself
 *    stays blocked and settles when the image is stopped;
 *  - exec loads the new program before touching the old one (a failure returns -errno to a caller
 *    that keeps running); on success the old image stops (same timer rule) and the new main starts
 *    with the same pid, descriptors, current directory and group;
 *  - spawn's pgid: PGID_NEW, PGID_FOREGROUND (a new group, the console's foreground one before the
 *    child runs), PGID_INHERIT or an existing group's id (EPERM if no process, zombies included,
 *    has it);
 *  - kill of a process that is already ending or a zombie succeeds and changes nothing; pid 1 can
 *    be killed, as in xv6 (the system then has no init: waitInit resolves, and the log says who
 *    killed it, since the session then ends with no other word);
 *  - argv longer than MAX_ARGV characters: E2BIG.
 */
import {
  ERRNO, PGID_FOREGROUND, PGID_INHERIT, PGID_NEW, STATUS_CRASHED, STATUS_INTERRUPTED, STATUS_KILLED, type Rv6, type WaitStatus,
} from '../../interfaces/rv6.js';
import type { RRef } from '../../runtime/types.js';
import { block } from './block.js';
import type { Ctx } from './ctx.js';
import { loadProgram, type Loaded } from './exec.js';
import type { DirRef, OpenFile } from './file.js';
import { INIT_PID, Image, Proc } from './proc.js';

const EINTR = -ERRNO.EINTR;
export const MAX_ARGV = 64 << 10;

/** Exit status from main's resolution. */
export function clampStatus(s: number): number {
  if (Number.isNaN(s)) return 255;
  return Math.min(255, Math.max(0, Math.trunc(s)));
}

/** Builds the per-image system-call object a program receives (index.ts). */
export type Rv6Factory = (img: Image) => Rv6;

/** A sleep in progress, of a process of group `pgid`: `wake` ends it with its result. */
interface Sleeper {
  readonly pgid: number;
  readonly wake: (result: number) => void;
}

export class ProcSyscalls {
  /** Sleeps in progress (interruptSleeps). */
  private readonly sleepers = new Set<Sleeper>();

  constructor(
    private readonly ctx: Ctx,
    private readonly rv6For: Rv6Factory,
  ) {}

  // ---- life cycle -------------------------------------------------------------------------------

  /** A new process (not started): `fds` are its descriptors 0, 1, 2 (shared), `cwd` is held for it. */
  newProc(pid: number, ppid: number, pgid: number, loaded: Loaded, cwd: DirRef, fds: OpenFile[]): Image {
    const p = new Proc(pid, ppid, pgid, loaded.name, cwd);
    fds.forEach((f, fd) => p.fds.share(fd, f));
    this.ctx.procs.add(p);
    return this.attach(p, loaded);
  }

  private attach(p: Proc, loaded: Loaded): Image {
    const img = new Image(p, loaded.domain, loaded.program);
    p.image = img;
    p.name = loaded.name;
    return img;
  }

  /** Call the image's main; its settlement ends the process (unless the image was replaced or the process ended otherwise). */
  run(img: Image, argv: string): void {
    if (!img.live) return;
    let done: Promise<number>;
    try {
      done = img.program.main(this.rv6For(img), argv);
    } catch (e) {
      done = Promise.reject(e);
    }
    const ended = done.then(
      (status) => {
        if (img.live) this.end(img.proc, clampStatus(status), false);
      },
      (e: unknown) => {
        if (!img.live) return;
        this.ctx.sys.log(`${img.domain} crashed: ${e instanceof Error ? e.message : String(e)}`);
        this.end(img.proc, STATUS_CRASHED, false);
      },
    );
    this.ctx.sys.detach(ended); // unawaited: see Sys.detach
  }

  /** Terminate an image's domain, then settle its blocked calls (idempotent). */
  private stop(img: Image): void {
    img.current = false;
    if (img.scope.isCancelled) return;
    this.ctx.loader.terminate(img.domain);
    img.scope.cancelAll();
    if (img.proc.replaced === img) img.proc.replaced = null;
  }

  /**
   * End process `p` with `status` (ignored if it is already ending). `byItself`: the request came
   * from a call of p's own running image — its domain is then stopped from a timer.
   */
  end(p: Proc, status: number, byItself: boolean): void {
    if (p.state !== 'running') return;
    p.state = 'ending';
    p.status = status;
    const img = p.image;
    if (img !== null) img.current = false;
    const finish = async (): Promise<void> => {
      if (p.replaced !== null) this.stop(p.replaced);
      if (img !== null) this.stop(img);
      await p.fds.closeAll();
      await p.cwd.release(this.ctx.fs);
      this.ctx.procs.zombie(p);
      if (p.pid === INIT_PID) this.ctx.initEnded(status);
    };
    const { sys, ending } = this.ctx;
    const f = byItself ? new Promise<void>((resolve) => sys.setTimeout(resolve, 0)).then(finish) : finish();
    ending.add(f);
    const cleanup = f.then(
      () => ending.delete(f),
      (e: unknown) => sys.panic(`ending process ${p.pid}: ${e instanceof Error ? e.message : String(e)}`),
    );
    sys.detach(cleanup); // unawaited: see Sys.detach
  }

  /** Block the calling image until it is stopped (exit, exec); resolves with `value` then. */
  private untilStopped<T>(img: Image, value: T): Promise<T> {
    return block(img.scope, value, () => () => {});
  }

  // ---- system calls -----------------------------------------------------------------------------

  async spawn(img: Image, path: string, argv: string, stdin: number, stdout: number, stderr: number, pgid: number): Promise<number> {
    if (!img.live) return EINTR;
    if (argv.length > MAX_ARGV) return -ERRNO.E2BIG;
    const p = img.proc;
    const err = this.spawnArgsError(p, [stdin, stdout, stderr], pgid);
    if (err < 0) return err;
    const pid = this.ctx.procs.allocPid();
    const cwd = p.cwd.hold();
    const loaded = await loadProgram(this.ctx, cwd, path, (name) => `${name}.${pid}`);
    if (typeof loaded === 'number') {
      await cwd.release(this.ctx.fs);
      return loaded;
    }
    // The caller may have ended, or closed a descriptor, while the program was loading.
    const again = img.live ? this.spawnArgsError(p, [stdin, stdout, stderr], pgid) : EINTR;
    if (again < 0) {
      this.ctx.loader.terminate(loaded.domain);
      await cwd.release(this.ctx.fs);
      return again;
    }
    const fds = [stdin, stdout, stderr].map((fd) => p.fds.get(fd)!);
    const group = pgid === PGID_NEW || pgid === PGID_FOREGROUND ? pid : pgid === PGID_INHERIT ? p.pgid : pgid;
    const child = this.newProc(pid, p.pid, group, loaded, cwd, fds);
    if (pgid === PGID_FOREGROUND) this.ctx.console.setForeground(group, p.pgid);
    this.run(child, argv);
    return pid;
  }

  private spawnArgsError(p: Proc, fds: number[], pgid: number): number {
    if (fds.some((fd) => p.fds.get(fd) === null)) return -ERRNO.EBADF;
    if (pgid === PGID_NEW || pgid === PGID_FOREGROUND || pgid === PGID_INHERIT) return 0;
    if (!Number.isInteger(pgid) || pgid < 0) return -ERRNO.EINVAL;
    return this.ctx.procs.groupExists(pgid) ? 0 : -ERRNO.EPERM;
  }

  async exec(img: Image, path: string, argv: string): Promise<number> {
    if (!img.live) return EINTR;
    if (argv.length > MAX_ARGV) return -ERRNO.E2BIG;
    const p = img.proc;
    const gen = p.execs + 1;
    const cwd = p.cwd.hold();
    const loaded = await loadProgram(this.ctx, cwd, path, (name) => `${name}.${p.pid}.${gen}`);
    await cwd.release(this.ctx.fs);
    if (typeof loaded === 'number') return loaded;
    if (!img.live) {
      this.ctx.loader.terminate(loaded.domain);
      return EINTR;
    }
    p.execs = gen;
    img.current = false;
    p.replaced = img;
    const next = this.attach(p, loaded);
    this.ctx.sys.setTimeout(() => {
      this.stop(img);
      this.run(next, argv);
    }, 0);
    return this.untilStopped(img, 0);
  }

  async wait(img: Image, pid: number): Promise<RRef<WaitStatus>> {
    const r = img.live ? await this.ctx.procs.wait(img.proc, pid, img.scope) : EINTR;
    const st = this.ctx.sys.alloc.struct<WaitStatus>('WaitStatus');
    if (typeof r === 'number') st.pid = r;
    else {
      st.pid = r.pid;
      st.status = r.status;
    }
    return st;
  }

  async exit(img: Image, status: number): Promise<void> {
    if (img.live) this.end(img.proc, clampStatus(status), true);
    return this.untilStopped(img, undefined);
  }

  async kill(img: Image, pid: number): Promise<number> {
    if (!img.live) return EINTR;
    if (!Number.isInteger(pid) || pid <= 0) return -ERRNO.EINVAL;
    const target = this.ctx.procs.get(pid);
    if (target === undefined) return -ERRNO.ESRCH;
    if (pid === INIT_PID && target.state === 'running') this.ctx.sys.log(`init (pid 1) killed by pid ${img.proc.pid}: the system has no init now and ends`);
    this.end(target, STATUS_KILLED, target === img.proc);
    return 0;
  }

  /** Ctrl-C: end the group's processes (init excepted). */
  interruptGroup(pgid: number): void {
    for (const p of this.ctx.procs.group(pgid)) if (p.pid !== INIT_PID) this.end(p, STATUS_INTERRUPTED, false);
  }

  getpid(img: Image): number {
    return img.proc.pid;
  }

  /**
   * Ctrl-C with no foreground group (console.ts): the sleeps of group `pgid`'s processes return
   * EINTR now; the processes live on.
   */
  interruptSleeps(pgid: number): void {
    for (const s of [...this.sleepers]) if (s.pgid === pgid) s.wake(EINTR);
  }

  async sleep(img: Image, ms: number): Promise<number> {
    if (!img.live) return EINTR;
    if (!(ms >= 0) || ms === Infinity) return -ERRNO.EINVAL;
    const { sys } = this.ctx;
    return block(img.scope, EINTR, (wake) => {
      // Out of `sleepers` however it ends: its time, Ctrl-C (interruptSleeps), the image's end.
      const s: Sleeper = { pgid: img.proc.pgid, wake: (r) => { disarm(); wake(r); } };
      const t = sys.setTimeout(() => s.wake(0), Math.min(ms, 0x7fffffff));
      const disarm = (): void => {
        sys.clearTimeout(t);
        this.sleepers.delete(s);
      };
      this.sleepers.add(s);
      return disarm;
    });
  }

  uptime(): number {
    return Math.floor(this.ctx.sys.now() - this.ctx.bootAt);
  }

  tcsetpgrp(img: Image, pgid: number): number {
    if (!img.live) return EINTR;
    if (!Number.isInteger(pgid) || pgid < 0) return -ERRNO.EINVAL;
    if (pgid !== 0 && !this.ctx.procs.groupExists(pgid)) return -ERRNO.EPERM;
    this.ctx.console.setForeground(pgid, img.proc.pgid);
    return 0;
  }

  async procs(): Promise<string> {
    const lines = ['PID PPID PGID STATE NAME'];
    for (const p of this.ctx.procs.all()) lines.push(`${p.pid} ${p.ppid} ${p.pgid} ${p.stateName} ${p.name}`);
    return lines.join('\n') + '\n';
  }

  async kdomains(): Promise<string> {
    return this.ctx.loader.domains();
  }

  async kcrash(name: string, afterCalls: number): Promise<number> {
    if (!Number.isInteger(afterCalls) || afterCalls < 0) return -ERRNO.EINVAL;
    // A fault fires on a call into its domain, and a program's domain gets one call, its main,
    // which is already running: armed there, it would never fire (`crash` said "armed" all the
    // same). A process is ended with kill.
    for (const p of this.ctx.procs.all()) if (p.image?.domain === name || p.replaced?.domain === name) return -ERRNO.EPERM;
    const why = this.ctx.loader.crash(name, afterCalls);
    if (why === null) return 0;
    this.ctx.sys.log(`kcrash ${name}: ${why}`);
    return -ERRNO.ENOENT;
  }
}
