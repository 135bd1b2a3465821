/**
 * The process table (xv6's proc.c, without fork): pids, parents and children, process groups,
 * zombies and their reaping by wait(), orphans.
 *
 * A process runs one program image at a time (a domain loaded from a program file); exec replaces
 * the image and keeps the process. Its life: 'running' → 'ending' (its status is decided; the
 * domain is being terminated and its descriptors closed) → 'zombie' (all released; waits to be
 * reaped by its parent) → gone.
 *
 * Decisions:
 *  - pids count up from 1 and are never reused while the core runs; pid 1 is init;
 *  - an ending process's children (running or zombie) are reparented to init, as on Unix; when
 *    init itself is gone they have no parent (ppid 0), and such a process is reaped as soon as it
 *    is a zombie (nobody could ever wait for it);
 *  - wait(-1) takes any zombie child, wait(pid) only that child; a wait that can no longer be
 *    satisfied (no such child left, e.g. another wait of the same process reaped it) returns
 *    ECHILD; several waits of one process are served in the order they were made.
 *
 * Invariants: a process is in `children` of its parent while it is in the table; a zombie is never
 * left unreaped while its parent has a wait it matches.
 */
import { ERRNO, type Program } from '../../interfaces/rv6.js';
import { block, removeFrom, CancelScope } from './block.js';
import { DirRef, FdTable } from './file.js';

export type ProcState = 'running' | 'ending' | 'zombie';

/** One program run by a process: its domain, the Program proxy and its blocked calls. */
export class Image {
  /** False once the process ended or exec'ed another image: its calls are refused. */
  current = true;
  readonly scope = new CancelScope();

  constructor(
    readonly proc: Proc,
    readonly domain: string,
    readonly program: Program,
  ) {}

  /** The process is running this image. */
  get live(): boolean {
    return this.current && this.proc.state === 'running';
  }
}

export interface Reaped {
  pid: number;
  status: number;
}

interface WaitCall {
  pid: number;
  wake: (r: Reaped | number) => void;
}

export class Proc {
  state: ProcState = 'running';
  /** Exit status, decided when it starts ending. */
  status = 0;
  readonly children = new Set<Proc>();
  readonly fds = new FdTable();
  image: Image | null = null;
  /** The image an exec replaced, until it is stopped (from a timer, see sysproc.ts). */
  replaced: Image | null = null;
  /** Blocked wait() calls, in order. */
  readonly waits: WaitCall[] = [];
  /** Images this process exec'ed (names later domains uniquely). */
  execs = 0;

  constructor(
    readonly pid: number,
    public ppid: number,
    readonly pgid: number,
    public name: string,
    public cwd: DirRef,
  ) {}

  /** For `procs`: run, sleep (blocked in a system call), zombie (ending or ended). */
  get stateName(): string {
    if (this.state !== 'running') return 'zombie';
    return this.image !== null && this.image.scope.size > 0 ? 'sleep' : 'run';
  }
}

export const INIT_PID = 1;

export class ProcTable {
  private readonly procs = new Map<number, Proc>();
  private nextPid = INIT_PID;

  allocPid(): number {
    return this.nextPid++;
  }

  add(p: Proc): void {
    this.procs.set(p.pid, p);
    this.get(p.ppid)?.children.add(p);
  }

  get(pid: number): Proc | undefined {
    return this.procs.get(pid);
  }

  all(): Proc[] {
    return [...this.procs.values()];
  }

  /** Running processes whose group is `pgid`. */
  group(pgid: number): Proc[] {
    return this.all().filter((p) => p.pgid === pgid && p.state === 'running');
  }

  /**
   * wait(pid) of `parent`: a reaped child now, -errno now, or a blocked call (cancelled with
   * -EINTR when `scope` is).
   */
  wait(parent: Proc, pid: number, scope: CancelScope): Reaped | number | Promise<Reaped | number> {
    if (pid !== -1 && !(Number.isInteger(pid) && pid > 0)) return -ERRNO.EINVAL;
    if (!this.hasChild(parent, pid)) return -ERRNO.ECHILD;
    for (const c of parent.children) {
      if (c.state === 'zombie' && (pid === -1 || c.pid === pid)) return this.reap(c);
    }
    return block<Reaped | number>(scope, -ERRNO.EINTR, (wake) => {
      const w: WaitCall = { pid, wake };
      parent.waits.push(w);
      return () => removeFrom(parent.waits, w);
    });
  }

  private hasChild(parent: Proc, pid: number): boolean {
    if (pid === -1) return parent.children.size > 0;
    const c = this.procs.get(pid);
    return c !== undefined && c.ppid === parent.pid;
  }

  /**
   * `p` finished ending: its children go to init (or to nobody), it becomes a zombie, and its
   * parent's matching wait reaps it — or, with no parent, it is reaped at once.
   */
  zombie(p: Proc): void {
    const init = this.procs.get(INIT_PID);
    const adopter = init !== undefined && init.state === 'running' && init !== p ? init : null;
    for (const c of [...p.children]) {
      p.children.delete(c);
      c.ppid = adopter?.pid ?? 0;
      if (adopter) adopter.children.add(c);
      if (c.state === 'zombie') this.notify(c);
    }
    // An ending parent no longer waits: its own blocked waits were cancelled with its image.
    p.state = 'zombie';
    this.notify(p);
  }

  private notify(z: Proc): void {
    const parent = this.procs.get(z.ppid);
    if (parent === undefined || parent.state !== 'running') {
      if (parent === undefined) this.reap(z);
      return;
    }
    const w = parent.waits.find((x) => x.pid === -1 || x.pid === z.pid);
    if (w === undefined) return;
    removeFrom(parent.waits, w);
    w.wake(this.reap(z));
    // Waits that can no longer be satisfied fail now rather than block forever.
    for (const other of [...parent.waits]) {
      if (!this.hasChild(parent, other.pid)) {
        removeFrom(parent.waits, other);
        other.wake(-ERRNO.ECHILD);
      }
    }
  }

  private reap(z: Proc): Reaped {
    this.procs.delete(z.pid);
    this.procs.get(z.ppid)?.children.delete(z);
    return { pid: z.pid, status: z.status };
  }
}
