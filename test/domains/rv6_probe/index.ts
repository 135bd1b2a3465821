/**
 * rv6_probe: a test program that runs its argv as a script of rv6 system calls and prints each
 * result as one JSON line, {"pid":P,"op":LABEL,"r":RESULT}, to its output descriptor (fd 1, or
 * the one an `out` command chose).
 *
 * argv[0] is the program name; every further argument is one command, a JSON array
 * `[op, ...args]`. `op` may be written `label=op`: the result is then kept, and a later argument
 * "$label" (or "$label.field") stands for it. Lines produced while fd 1 is not open yet (the probe
 * as init, before it opened the console) are kept and written once it is. Commands:
 *
 *   files   open path flags | close fd | dup fd | lseek fd off whence | fstat fd | stat path
 *           read fd n [bufSize (-1: no buffer)] → {n,text} | readall fd → {n,text} (until EOF)
 *           write fd text [n] | writen fd count [char] (one write of count bytes)
 *           getdents fd [off] → {n,off,names} | ls path → names | pipe → {err,rfd,wfd}
 *           link a b | unlink p | rename a b | mkdir p | rmdir p | mknod p major minor | chdir p | getcwd
 *   procs   spawn path argv[] in out err pgid | exec path argv[] | wait pid → {pid,status}
 *           exit status | kill pid | getpid | sleep ms | uptime | tcsetpgrp pgid
 *           procs | kdomains | kcrash name afterCalls
 *   control out fd (print to fd from now on) | echo value | return status | crash (throw) | hang (await forever) | tick (a timer
 *           loop forever) | spin (a busy loop: deadline) | bg [cmd...] (run concurrently)
 *
 * In spawn/exec argv arrays, an element that is not a string is JSON-encoded (a child's command).
 */
import type { IoBuf, Program, Rv6, StatBuf } from '../../../src/interfaces/rv6.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef } from '../../../src/runtime/types.js';

type Value = unknown;

export function init(sys: Sys): Program {
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  return {
    async main(rv6: Rv6, argvText: string): Promise<number> {
      const argv = argvText.split('\0');
      const pid = rv6.getpid();
      const vars = new Map<string, Value>();
      const pending: string[] = [];
      let outFd = 1;

      // One flush at a time (a `bg` script prints concurrently with the main one).
      let flushing: Promise<void> = Promise.resolve();
      const flushNow = async (): Promise<void> => {
        while (pending.length > 0) {
          const bytes = enc.encode(pending[0]!);
          const buf = sys.alloc.bytes(Math.max(bytes.length, 1));
          buf.write(0, bytes);
          const r = await rv6.write(outFd, buf, bytes.length);
          buf.drop();
          if (r < 0) return;
          pending.shift();
        }
      };
      const flush = (): Promise<void> => (flushing = flushing.then(flushNow));
      const print = async (op: string, r: Value): Promise<void> => {
        pending.push(JSON.stringify({ pid, op, r }) + '\n');
        await flush();
      };

      const arg = (v: Value): Value => {
        if (typeof v !== 'string' || !v.startsWith('$')) return v;
        const [name, field] = v.slice(1).split('.');
        const val = vars.get(name!);
        return field === undefined ? val : (val as Record<string, Value>)[field];
      };
      const num = (v: Value): number => arg(v) as number;
      const str = (v: Value): string => arg(v) as string;
      const argvOf = (v: Value): string => (arg(v) as Value[]).map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join('\0');

      const stat = (st: RRef<StatBuf>): Value => {
        const r = { err: st.err, type: st.type, nlink: st.nlink, dev: st.dev, ino: st.ino, size: st.size, major: st.major, minor: st.minor };
        st.drop();
        return r;
      };
      const readOnce = async (fd: number, n: number, bufSize = n): Promise<{ n: number; text: string }> => {
        let io = sys.alloc.struct<IoBuf>('IoBuf');
        if (bufSize >= 0) io.data = sys.alloc.bytes(Math.max(bufSize, 1));
        io.n = n;
        io = await rv6.read(fd, io);
        const got = io.n;
        let text = '';
        if (got > 0) {
          const bytes = new Uint8Array(got);
          io.data!.read(0, bytes, 0, got);
          text = dec.decode(bytes);
        }
        io.drop();
        return { n: got, text };
      };
      const getdents = async (fd: number, off: number): Promise<{ n: number; off: number; names: string[] }> => {
        let io = sys.alloc.struct<IoBuf>('IoBuf');
        io.data = sys.alloc.bytes(4096);
        io.n = 4096;
        io.off = off;
        io = await rv6.getdents(fd, io);
        const r = { n: io.n, off: io.off, names: [] as string[] };
        if (io.n > 0) {
          const bytes = new Uint8Array(io.n);
          io.data!.read(0, bytes, 0, io.n);
          for (const e of dec.decode(bytes).split('\0')) if (e !== '') r.names.push(e.slice(e.indexOf(' ') + 1));
        }
        io.drop();
        return r;
      };
      const write = async (fd: number, bytes: Uint8Array, n = bytes.length): Promise<number> => {
        const buf = sys.alloc.bytes(Math.max(bytes.length, 1));
        buf.write(0, bytes);
        const r = await rv6.write(fd, buf, n);
        buf.drop();
        return r;
      };

      const run = async (cmd: Value[]): Promise<Value> => {
        const a = cmd.slice(1);
        const op = (cmd[0] as string).split('=').pop()!;
        switch (op) {
          case 'open': return rv6.open(str(a[0]), num(a[1]));
          case 'close': return rv6.close(num(a[0]));
          case 'dup': return rv6.dup(num(a[0]));
          case 'lseek': return rv6.lseek(num(a[0]), num(a[1]), num(a[2]));
          case 'fstat': return stat(await rv6.fstat(num(a[0])));
          case 'stat': return stat(await rv6.stat(str(a[0])));
          case 'read': return readOnce(num(a[0]), num(a[1]), a[2] === undefined ? undefined : num(a[2]));
          case 'readall': {
            let text = '';
            let total = 0;
            for (;;) {
              const r = await readOnce(num(a[0]), 512);
              if (r.n < 0) return { n: r.n, text };
              if (r.n === 0) return { n: total, text };
              total += r.n;
              text += r.text;
            }
          }
          case 'write': return write(num(a[0]), enc.encode(str(a[1])), a[2] === undefined ? undefined : num(a[2]));
          case 'writen': return write(num(a[0]), enc.encode((a[2] === undefined ? 'x' : str(a[2])).repeat(num(a[1]))));
          case 'getdents': return getdents(num(a[0]), a[1] === undefined ? 0 : num(a[1]));
          case 'ls': {
            const fd = await rv6.open(str(a[0]), 0);
            if (fd < 0) return fd;
            const names: string[] = [];
            for (let off = 0; ; ) {
              const r = await getdents(fd, off);
              if (r.n <= 0) break;
              names.push(...r.names);
              off = r.off;
            }
            await rv6.close(fd);
            return names;
          }
          case 'pipe': {
            const p = await rv6.pipe();
            const r = { err: p.err, rfd: p.rfd, wfd: p.wfd };
            p.drop();
            return r;
          }
          case 'link': return rv6.link(str(a[0]), str(a[1]));
          case 'unlink': return rv6.unlink(str(a[0]));
          case 'rename': return rv6.rename(str(a[0]), str(a[1]));
          case 'mkdir': return rv6.mkdir(str(a[0]));
          case 'rmdir': return rv6.rmdir(str(a[0]));
          case 'mknod': return rv6.mknod(str(a[0]), num(a[1]), num(a[2]));
          case 'chdir': return rv6.chdir(str(a[0]));
          case 'getcwd': return rv6.getcwd();
          case 'spawn': return rv6.spawn(str(a[0]), argvOf(a[1]), num(a[2]), num(a[3]), num(a[4]), num(a[5]));
          case 'exec': return rv6.exec(str(a[0]), argvOf(a[1]));
          case 'wait': {
            const w = await rv6.wait(num(a[0]));
            const r = { pid: w.pid, status: w.status };
            w.drop();
            return r;
          }
          case 'exit': return rv6.exit(num(a[0]));
          case 'kill': return rv6.kill(num(a[0]));
          case 'getpid': return rv6.getpid();
          case 'sleep': return rv6.sleep(num(a[0]));
          case 'uptime': return rv6.uptime();
          case 'tcsetpgrp': return rv6.tcsetpgrp(num(a[0]));
          case 'procs': return rv6.procs();
          case 'kdomains': return rv6.kdomains();
          case 'kcrash': return rv6.kcrash(str(a[0]), num(a[1]));
          case 'echo': return arg(a[0]);
          case 'out':
            outFd = num(a[0]);
            return outFd;
          case 'crash': throw new Error('rv6_probe: crash requested');
          case 'hang': return new Promise(() => {});
          case 'tick':
            for (;;) await new Promise<void>((r) => sys.setTimeout(r, 5));
          case 'spin':
            for (;;);
          case 'regexBomb': // native code with no deadline checks (a backreference: no linear-time fallback)
            return /^(a+)+\1$/.test('a'.repeat(num(a[0])) + 'b') ? 1 : 0;
          case 'bg':
            sys.detach(script(a as Value[][])); // a failure of the background script is the probe's panic
            return 'started';
          default: return `unknown op ${op}`;
        }
      };

      /** Run commands in order; the status of a `return`, or null at the end. */
      const script = async (cmds: Value[][]): Promise<number | null> => {
        for (const cmd of cmds) {
          const label = cmd[0] as string;
          if (label === 'return') {
            await flush();
            return num(cmd[1]);
          }
          const r = await run(cmd);
          const eq = label.indexOf('=');
          if (eq > 0) vars.set(label.slice(0, eq), r);
          await print(eq > 0 ? label.slice(0, eq) : label, r);
        }
        return null;
      };

      const status = await script(argv.slice(1).map((s) => JSON.parse(s) as Value[]));
      return status ?? 0;
    },
  };
}
