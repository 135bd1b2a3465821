/**
 * The rv6 core domain (ARCHITECTURE §8): processes, file descriptors, pipes and the console, and
 * the system calls of every user program. Imports the fs domain (Rv6Fs) and two host
 * capabilities: the program loader (the core's only way to create and end domains) and the
 * console's output. Exports Rv6Boot to the host (the `redleaf boot` console, tests).
 *
 * Each program image gets its own system-call object (ProcRv6), bound to that image: it is the
 * program's only authority, and a call through it can only ever act for that process. Design
 * decisions are written in README.md beside this file and in each file's header.
 */
import {
  ERRNO, STATUS_KILLED, type FdPair, type IoBuf, type Rv6, type Rv6Boot, type Rv6Fs, type StatBuf, type WaitStatus,
} from '../../interfaces/rv6.js';
import type { ConsoleOut, ProgramLoader } from '../../runtime/rv6host.js';
import type { Sys } from '../../runtime/sys.js';
import type { Borrow, RRef, RRefArray } from '../../runtime/types.js';
import { Console } from './console.js';
import type { Ctx } from './ctx.js';
import { loadProgram, programName } from './exec.js';
import { DirRef } from './file.js';
import { FsClient } from './fsclient.js';
import { INIT_PID, ProcTable, type Image } from './proc.js';
import { FileSyscalls } from './sysfile.js';
import { ProcSyscalls } from './sysproc.js';

/** The system-call object of one program image. */
class ProcRv6 implements Rv6 {
  constructor(
    private readonly img: Image,
    private readonly f: FileSyscalls,
    private readonly p: ProcSyscalls,
  ) {}

  open(path: string, flags: number): Promise<number> {
    return this.f.open(this.img, path, flags);
  }
  read(fd: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    return this.f.read(this.img, fd, io);
  }
  write(fd: number, data: Borrow<RRefArray<number>>, n: number): Promise<number> {
    return this.f.write(this.img, fd, data, n);
  }
  close(fd: number): Promise<number> {
    return this.f.close(this.img, fd);
  }
  lseek(fd: number, offset: number, whence: number): Promise<number> {
    return this.f.lseek(this.img, fd, offset, whence);
  }
  fstat(fd: number): Promise<RRef<StatBuf>> {
    return this.f.fstat(this.img, fd);
  }
  stat(path: string): Promise<RRef<StatBuf>> {
    return this.f.stat(this.img, path);
  }
  getdents(fd: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    return this.f.getdents(this.img, fd, io);
  }
  dup(fd: number): Promise<number> {
    return this.f.dup(this.img, fd);
  }
  pipe(): Promise<RRef<FdPair>> {
    return this.f.pipe(this.img);
  }
  link(oldPath: string, newPath: string): Promise<number> {
    return this.f.link(this.img, oldPath, newPath);
  }
  unlink(path: string): Promise<number> {
    return this.f.unlink(this.img, path);
  }
  rename(oldPath: string, newPath: string): Promise<number> {
    return this.f.rename(this.img, oldPath, newPath);
  }
  mkdir(path: string): Promise<number> {
    return this.f.mkdir(this.img, path);
  }
  rmdir(path: string): Promise<number> {
    return this.f.rmdir(this.img, path);
  }
  mknod(path: string, major: number, minor: number): Promise<number> {
    return this.f.mknod(this.img, path, major, minor);
  }
  chdir(path: string): Promise<number> {
    return this.f.chdir(this.img, path);
  }
  getcwd(): Promise<string> {
    return this.f.getcwd(this.img);
  }
  spawn(path: string, argv: string, stdin: number, stdout: number, stderr: number, pgid: number): Promise<number> {
    return this.p.spawn(this.img, path, argv, stdin, stdout, stderr, pgid);
  }
  exec(path: string, argv: string): Promise<number> {
    return this.p.exec(this.img, path, argv);
  }
  wait(pid: number): Promise<RRef<WaitStatus>> {
    return this.p.wait(this.img, pid);
  }
  exit(status: number): Promise<void> {
    return this.p.exit(this.img, status);
  }
  kill(pid: number): Promise<number> {
    return this.p.kill(this.img, pid);
  }
  getpid(): number {
    return this.p.getpid(this.img);
  }
  sleep(ms: number): Promise<number> {
    return this.p.sleep(this.img, ms);
  }
  uptime(): number {
    return this.p.uptime();
  }
  tcsetpgrp(pgid: number): number {
    return this.p.tcsetpgrp(this.img, pgid);
  }
  procs(): Promise<string> {
    return this.p.procs();
  }
  kdomains(): Promise<string> {
    return this.p.kdomains();
  }
  kcrash(name: string, afterCalls: number): Promise<number> {
    return this.p.kcrash(name, afterCalls);
  }
}

export function init(sys: Sys, fsDomain: Rv6Fs, loader: ProgramLoader, out: ConsoleOut): Rv6Boot {
  let resolveInit: (status: number) => void = () => {};
  const initExit = new Promise<number>((resolve) => (resolveInit = resolve));
  let mounted = false;
  let booted = false;
  let shutdown: Promise<number> | null = null;

  let interruptGroup: (pgid: number) => void = () => {};
  let interruptSleeps: (pgid: number) => void = () => {};
  const ctx: Ctx = {
    sys,
    fs: new FsClient(fsDomain, loader, sys),
    loader,
    console: new Console(
      (text) => out.write(text),
      (pgid) => interruptGroup(pgid),
      (pgid) => interruptSleeps(pgid),
    ),
    procs: new ProcTable(),
    bootAt: sys.now(),
    ending: new Set(),
    initEnded: (status) => resolveInit(status),
  };
  const files = new FileSyscalls(ctx);
  const procs: ProcSyscalls = new ProcSyscalls(ctx, (img) => new ProcRv6(img, files, procs));
  interruptGroup = (pgid) => procs.interruptGroup(pgid);
  interruptSleeps = (pgid) => procs.interruptSleeps(pgid);

  return {
    async boot(path: string, argv: string): Promise<number> {
      if (booted || shutdown !== null) return -ERRNO.EBUSY;
      booted = true;
      if (!mounted) {
        const r = await ctx.fs.mount();
        if (r < 0) {
          booted = false;
          return r;
        }
        mounted = true;
      }
      const root = new DirRef(0, '/');
      const loaded = await loadProgram(ctx, root, path, (name) => `${name}.${INIT_PID}`);
      if (typeof loaded === 'number' || shutdown !== null) {
        if (typeof loaded !== 'number') loader.terminate(loaded.domain);
        booted = false;
        return typeof loaded === 'number' ? loaded : -ERRNO.EBUSY;
      }
      const pid = ctx.procs.allocPid();
      const img = procs.newProc(pid, 0, pid, loaded, root, []);
      procs.run(img, argv);
      sys.log(`init: ${programName(path)} started as pid ${pid}`);
      return 0;
    },
    waitInit(): Promise<number> {
      return initExit;
    },
    consoleInput(text: string): void {
      ctx.console.input(text);
    },
    consoleEof(): void {
      ctx.console.eof();
    },
    consoleHangup(): void {
      ctx.console.hangup();
    },
    consoleInterrupt(): void {
      ctx.console.interrupt();
    },
    shutdown(): Promise<number> {
      shutdown ??= (async () => {
        for (const p of ctx.procs.all()) procs.end(p, STATUS_KILLED, false);
        while (ctx.ending.size > 0) await Promise.all([...ctx.ending]);
        return mounted ? ctx.fs.unmount() : 0;
      })();
      return shutdown;
    },
  };
}
