/**
 * The shell's executor: runs parsed list items with Rv6 system calls.
 *
 *  - a pipeline's commands are spawned left to right, connected by pipes, with their redirections
 *    opened by the shell and passed to `spawn` as the child's fds 0, 1, 2; the shell closes its
 *    copies right after spawning (children inherit nothing else), then waits for every pid; the
 *    status is the last command's;
 *  - job control (an interactive shell only): a foreground pipeline is a new process group (the
 *    first command PGID_FOREGROUND, the rest join it), the console's foreground group from before
 *    its first command runs until it ends; after it, the console goes back to the shell's idle
 *    group: none (0) on the rv6 core, so Ctrl-C at the prompt does not end the shell (whose group
 *    then keeps the console's input). A background job is a group of its own and never the
 *    foreground one: a read of the console fails (EIO), and its pipelines read an empty input
 *    unless redirected (POSIX's /dev/null for an asynchronous list; rv6 has none, so the read end
 *    of a pipe with no writer), so that `cat &` ends at once. A non-interactive shell's commands
 *    stay in the shell's group, as in sh, so Ctrl-C interrupts a script as a whole;
 *  - a background and-or list runs as a task of the shell, which announces `[pid]` and goes on;
 *    `wait` waits for all of them. Each job has its own `$?`;
 *  - builtins (cd, exit [n], wait, true, false) run in the shell, as single commands only; `wait`
 *    waits for every background job (a job waits for its own children, so there is no `wait PID`),
 *    and Ctrl-C interrupts it (status 130) but not the jobs;
 *    `exit N` exits with N modulo 256, as bash: a non-numeric N is an error that still exits (with
 *    2), two or more arguments an error that does not (status 1);
 *
 * Invariant: every fd the shell opens for a pipeline is closed before the pipeline is waited for,
 * so a reader sees end of file when its writers exit.
 */
import {
  ERRNO, O_APPEND, O_CREATE, O_RDONLY, O_TRUNC, O_WRONLY, PGID_FOREGROUND, PGID_INHERIT, PGID_NEW, STATUS_CRASHED,
  STATUS_INTERRUPTED,
} from '../../interfaces/rv6.js';
import { joinArgv, type Ulib } from '../../runtime/ulib/index.js';
import { expandWord, type AndOr, type Command, type ListItem, type Pipeline, type Redirect } from './parse.js';

/** `$?` of one flow of execution: the shell's, or a background job's own. */
interface Context {
  status: number;
  background: boolean;
  /** Told the pid of the first process the job starts (background jobs announce it). */
  onStart?: (pid: number) => void;
}

interface Spawned {
  pid: number;
  status: number;
  group: number;
}

/** Status of a command that was not found / could not be executed (as sh). */
const STATUS_NOT_FOUND = 127;
const STATUS_CANNOT_EXEC = 126;
/** Status of a builtin given a bad argument (bash's exit with a non-numeric one). */
const STATUS_USAGE = 2;
/** `wait`'s sleeps beside its jobs (see the builtin): how long one may outlast them. */
const WAIT_TICK_MS = 1000;

const BUILTINS = ['cd', 'exit', 'wait', 'true', 'false'] as const;
type BuiltinName = (typeof BUILTINS)[number];
const isBuiltin = (name: string | undefined): boolean => (BUILTINS as readonly (string | undefined)[]).includes(name);

export class Shell {
  /** `$?` of the shell (foreground). */
  readonly main: Context = { status: 0, background: false };
  /** Set by `exit`: the status the shell ends with. */
  exitStatus: number | null = null;
  private readonly jobs = new Set<Promise<void>>();

  /**
   * `idleGroup`: null for no job control; else the console's foreground group while the shell
   * itself runs (see above). Pipelines are then process groups given the console while they run.
   */
  constructor(private readonly u: Ulib, private readonly idleGroup: number | null) {}

  /** Run the items of one parsed input, stopping after `exit`. */
  async run(items: ListItem[]): Promise<void> {
    for (const item of items) {
      if (this.exitStatus !== null) return;
      if (item.background) await this.startJob(item.andOr);
      else this.main.status = await this.andOr(item.andOr, this.main);
    }
  }

  private async startJob(a: AndOr): Promise<void> {
    let announce!: (pid: number) => void;
    const started = new Promise<number>((resolve) => (announce = resolve));
    const ctx: Context = { status: this.main.status, background: true, onStart: announce };
    const job = this.andOr(a, ctx).then(() => announce(-1)); // a job that started nothing
    this.jobs.add(job);
    const forget = (): void => void this.jobs.delete(job);
    this.u.sys.detach(job.then(forget, forget)); // unawaited (Sys.detach)
    const pid = await started;
    if (pid > 0) await this.u.eprint(`[${pid}]\n`);
    this.main.status = 0;
  }

  private async andOr(a: AndOr, ctx: Context): Promise<number> {
    ctx.status = await this.pipeline(a.first, ctx);
    for (const { op, pipeline } of a.rest) {
      if ((op === '&&') === (ctx.status === 0)) ctx.status = await this.pipeline(pipeline, ctx);
    }
    return ctx.status;
  }

  private async pipeline(p: Pipeline, ctx: Context): Promise<number> {
    // A group runs in a subshell (parse.ts): the shell program on its text.
    const argvs = p.commands.map((c) => (c.group !== undefined ? ['sh', '-c', c.group] : c.words.map((w) => expandWord(w, ctx.status))));
    const builtinAt = argvs.findIndex((argv) => isBuiltin(argv[0]));
    if (builtinAt >= 0) {
      if (p.commands.length === 1) return this.builtin(argvs[0]!, p.commands[0]!, ctx);
      return this.u.error(`${argvs[builtinAt]![0]}: a builtin cannot be part of a pipeline`);
    }

    const foreground = !ctx.background && this.idleGroup !== null;
    // Non-interactive foreground pipelines stay in the shell's group; everything else gets its own.
    let pgid = foreground ? PGID_FOREGROUND : ctx.background ? PGID_NEW : PGID_INHERIT;
    const pids: number[] = [];
    let lastPid = -1;
    let lastStatus = 0;
    let stdin = 0;
    if (ctx.background) {
      const empty = await this.emptyInput();
      if (empty < 0) return this.u.fail('pipe', empty);
      stdin = empty;
    }
    for (let i = 0; i < p.commands.length; i++) {
      const last = i === p.commands.length - 1;
      let stdout = 1;
      let pipeRead = -1;
      if (!last) {
        const { err, rfd, wfd } = await this.pipe();
        if (err < 0) {
          if (stdin !== 0) await this.u.close(stdin);
          lastStatus = await this.u.fail('pipe', err);
          break;
        }
        stdout = wfd;
        pipeRead = rfd;
      }
      const r = await this.spawnCommand(argvs[i]!, p.commands[i]!, [stdin, stdout, 2], pgid, ctx);
      if (stdin !== 0) await this.u.close(stdin);
      if (stdout !== 1) await this.u.close(stdout);
      stdin = pipeRead;
      if (r.pid > 0) {
        pids.push(r.pid);
        pgid = r.group; // a new group is the foreground one already, if it is to be (PGID_FOREGROUND)
      }
      if (last) {
        lastPid = r.pid;
        lastStatus = r.status;
      }
    }
    ctx.onStart?.(pids[pids.length - 1] ?? -1);

    for (const pid of pids) {
      const w = await this.u.wait(pid);
      if (pid !== lastPid) continue;
      if (w.pid < 0) lastStatus = await this.u.fail(`wait for ${pid}`, w.pid);
      else lastStatus = w.status;
      if (w.status === STATUS_CRASHED) await this.u.error(`${argvs[argvs.length - 1]![0]}: crashed (pid ${pid})`);
    }
    if (foreground && pids.length > 0) this.u.rv6.tcsetpgrp(this.idleGroup!);
    return lastStatus;
  }

  /** pipe(2) as plain values. */
  private async pipe(): Promise<{ err: number; rfd: number; wfd: number }> {
    const fds = await this.u.rv6.pipe();
    const { err, rfd, wfd } = fds;
    fds.drop();
    return { err, rfd, wfd };
  }

  /** A descriptor that reads end of file at once (a pipe whose write end is closed), or -errno. */
  private async emptyInput(): Promise<number> {
    const { err, rfd, wfd } = await this.pipe();
    if (err < 0) return err;
    await this.u.close(wfd);
    return rfd;
  }

  /**
   * Open the redirections of `cmd` over `fds` ([stdin, stdout, stderr] of the child) and spawn
   * it in group `pgid`. Returns its pid and the group it is in (its own pid if it leads a new
   * one), or pid -1 with the status to report when nothing was started (a failed redirection, a
   * command not found, a command of redirections only).
   */
  private async spawnCommand(argv: string[], cmd: Command, fds: number[], pgid: number, ctx: Context): Promise<Spawned> {
    const opened: number[] = [];
    try {
      for (const r of cmd.redirects) {
        const fd = await this.redirect(r, fds, ctx);
        if (fd === null) return { pid: -1, status: 1, group: pgid };
        if (fd >= 0) opened.push(fd);
      }
      if (argv.length === 0) return { pid: -1, status: 0, group: pgid };
      const spawn = (group: number): Promise<number> => this.u.rv6.spawn(argv[0]!, joinArgv(argv), fds[0]!, fds[1]!, fds[2]!, group);
      let pid = await spawn(pgid);
      // The pipeline's group is gone when all its processes have ended already (`cat f | grep x`):
      // this command then starts a new one, which the rest of the pipeline joins.
      let group = pgid;
      if (pid === -ERRNO.EPERM && pgid > 0) {
        group = ctx.background ? PGID_NEW : PGID_FOREGROUND;
        pid = await spawn(group);
      }
      if (pid >= 0) return { pid, status: 0, group: group === PGID_NEW || group === PGID_FOREGROUND ? pid : group };
      if (pid === -ERRNO.ENOENT) {
        await this.u.error(`${argv[0]}: command not found`);
        return { pid: -1, status: STATUS_NOT_FOUND, group: pgid };
      }
      await this.u.warn(argv[0]!, pid);
      return { pid: -1, status: STATUS_CANNOT_EXEC, group: pgid };
    } finally {
      for (const fd of opened) await this.u.close(fd);
    }
  }

  /**
   * Apply one redirection to `fds`: the fd the shell opened for it (to close after the spawn),
   * -1 when nothing was opened (a dup), or null after reporting an error.
   */
  private async redirect(r: Redirect, fds: number[], ctx: Context): Promise<number | null> {
    const target = expandWord(r.target, ctx.status);
    if (r.kind === 'dup') {
      if (!/^[012]$/.test(target)) {
        await this.u.error(`${target}: bad file descriptor (only 0, 1 and 2)`);
        return null;
      }
      fds[r.fd] = fds[Number(target)]!;
      return -1;
    }
    const flags = r.kind === 'read' ? O_RDONLY : O_WRONLY | O_CREATE | (r.kind === 'append' ? O_APPEND : O_TRUNC);
    const fd = await this.u.rv6.open(target, flags);
    if (fd < 0) {
      await this.u.warn(target, fd);
      return null;
    }
    fds[r.fd] = fd;
    return fd;
  }

  private async builtin(argv: string[], cmd: Command, ctx: Context): Promise<number> {
    // Redirections are opened (a `> file` creates it); a builtin's messages go to the shell's stderr.
    const fds = [0, 1, 2];
    const opened: number[] = [];
    try {
      for (const r of cmd.redirects) {
        const fd = await this.redirect(r, fds, ctx);
        if (fd === null) return 1;
        if (fd >= 0) opened.push(fd);
      }
      const [name, ...args] = argv as [BuiltinName, ...string[]];
      return await this.builtins[name](args, ctx);
    } finally {
      for (const o of opened) await this.u.close(o);
    }
  }

  private readonly builtins: Record<BuiltinName, (args: string[], ctx: Context) => Promise<number>> = {
    cd: async (args) => {
      if (args.length > 1) return this.u.error('cd: too many arguments');
      const dir = args[0] ?? '/';
      const r = await this.u.rv6.chdir(dir);
      return r < 0 ? this.u.fail(`cd: ${dir}`, r) : 0;
    },
    // As bash: a status that is not a number still exits (with 2, after the error), while too many
    // arguments is an error the shell survives (status 1), in a script as at the prompt.
    exit: async (args, ctx) => {
      if (args.length > 1) return this.u.error('exit: too many arguments');
      let status = args.length === 0 ? ctx.status : parseStatus(args[0]!);
      if (status === null) {
        await this.u.error(`exit: ${args[0]}: numeric argument required`);
        status = STATUS_USAGE;
      }
      this.exitStatus = status;
      return status;
    },
    // Ctrl-C interrupts `wait` (status 130), not the jobs, as in bash. No group is in the
    // foreground meanwhile, so Ctrl-C wakes the shell group's sleeps instead (console.ts): the
    // shell sleeps in ticks beside its jobs. A tick left over when the jobs end runs out alone.
    // A non-interactive shell is in the foreground group, which Ctrl-C ends as a whole.
    wait: async (args) => {
      if (args.length > 0) return this.u.error('wait: takes no arguments (it waits for every background job)');
      while (this.jobs.size > 0) {
        const jobs = Promise.all(this.jobs).then(() => 0);
        const r = this.idleGroup === null ? await jobs : await Promise.race([jobs, this.u.rv6.sleep(WAIT_TICK_MS)]);
        if (r === -ERRNO.EINTR) return STATUS_INTERRUPTED;
      }
      return 0;
    },
    true: async () => 0,
    false: async () => 1,
  };
}

/** The range of bash's exit argument (intmax_t): a number outside it is not numeric. */
const STATUS_ARG_MIN = -(2n ** 63n);
const STATUS_ARG_MAX = 2n ** 63n - 1n;

/**
 * An exit status argument as bash reads it, or null if it is not numeric: a decimal integer, sign
 * and surrounding blanks allowed, within a 64-bit signed range, taken modulo 256 (`exit -1` is
 * 255, `exit 256` is 0). BigInt, so a long number is neither rounded nor wrapped at 32 bits.
 */
function parseStatus(arg: string): number | null {
  const m = /^[ \t\n]*([+-]?[0-9]+)[ \t\n]*$/.exec(arg);
  if (m === null) return null;
  const n = BigInt(m[1]!);
  return n < STATUS_ARG_MIN || n > STATUS_ARG_MAX ? null : Number(BigInt.asUintN(8, n));
}
