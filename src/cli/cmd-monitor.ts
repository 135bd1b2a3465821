/**
 * `redleaf monitor`: boot the bare kernel (no rv6) into a monitor console that shows isolation at
 * work on the example domains: dom_c, dom_d, and dom_d behind the shadow_c pass-through shadow.
 * List domains, call across, crash a domain, restart it, see the shadowed path carry on.
 * Line editing and history come from node:readline on a terminal; Ctrl-D or "exit" leaves.
 */
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { Kernel, type DomainInfo } from '../kernel/kernel.js';
import { alignColumns } from '../host/columns.js';
import { artifactPath } from '../kernel/paths.js';
import { isRpcError } from '../kernel/errors.js';
import type { Caller } from '../interfaces/index.js';

const HELP = `commands:
  domains              every domain: state, calls served, faults, restarts, exchange-heap use
  call [N]             N calls (default 1000, at most 1000000) dom_d -> dom_c (direct) and
                       dom_d_shadowed -> shadow_c -> dom_c
  crash NAME           inject a fault into domain NAME now (try: crash dom_c)
  crash NAME after N   crash NAME at its N-th next call
  restart NAME         restart NAME from its artifact
  help                 this text
  exit                 shut down (or Ctrl-D)`;

/** Calls one `call` may make: about a fifth of dom_d's deadline through the shadow (~0.4 µs a call), so a run stays well inside it. */
const MAX_CALLS = 1_000_000;
/** Every domain's deadline for one run of its code (the kernel's default, said here for the message). */
const DEADLINE_MS = 2000;

/**
 * A whole number >= 1 written in decimal digits, or null; also null past 2^53 - 1, where digits
 * round to another number ("crash dom_c after 99999999999999999999" armed call #1e20, and said so).
 */
const count = (arg: string): number | null => (/^[1-9][0-9]*$/.test(arg) && Number.isSafeInteger(Number(arg)) ? Number(arg) : null);

const whichDomain = (cmd: string): true => {
  console.log(`${cmd}: which domain? (see "domains")`);
  return true;
};

export function formatDomains(list: DomainInfo[]): string {
  const rows = list.map((d) => [String(d.id), d.name, d.state, String(d.calls), String(d.faults), String(d.restarts), String(d.heapBytes), String(d.heapSlots), d.lastFault ?? '']);
  const head = ['id', 'name', 'state', 'calls', 'faults', 'restarts', 'heap-bytes', 'slots', 'last fault'];
  return alignColumns([head, ...rows]).join('\n');
}

export function register(program: Command): void {
  program
    .command('monitor')
    .description('boot the bare kernel (no rv6) into a monitor console over the example domains (commands: domains, call, crash, restart)')
    .addHelpText('after', '\nExample session:\n  redleaf> domains\n  redleaf> crash dom_c\n  redleaf> call 10      # dom_d gets an RpcError; dom_d_shadowed carries on\n  redleaf> domains     # dom_c: faults 1, restarts 1\n  redleaf> exit\n')
    .action(async () => {
      const kernel = new Kernel({ physBytes: 64 << 20, defaultDeadlineMs: DEADLINE_MS, log: (d, l) => console.log(`[${d}] ${l}`) });
      kernel.onFault((d, cause, msg) => console.log(`kernel: domain ${d.name} died (${cause}): ${msg}`));
      kernel.load(artifactPath('dom_c'));
      kernel.load(artifactPath('dom_d'), { imports: ['dom_c'] });
      kernel.load(artifactPath('shadow_c'), { imports: [{ supervise: 'dom_c' }] });
      kernel.load(artifactPath('dom_d'), { name: 'dom_d_shadowed', imports: ['shadow_c'] });
      console.log('RedLeaf.ts kernel monitor. Type "help".');
      const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: 'redleaf> ', terminal: process.stdin.isTTY });
      const run = (line: string): boolean => {
        const [cmd, ...args] = line.trim().split(/\s+/);
        switch (cmd) {
          case undefined:
          case '':
            return true;
          case 'help':
            console.log(HELP);
            return true;
          case 'domains':
            console.log(formatDomains(kernel.list()));
            return true;
          case 'call': {
            const n = args.length === 0 ? 1000 : count(args[0]!);
            if (n === null || n > MAX_CALLS || args.length > 1) {
              console.log(`call: N must be a whole number from 1 to ${MAX_CALLS} (a longer run would pass dom_d's ${DEADLINE_MS / 1000} s deadline)`);
              return true;
            }
            for (const name of ['dom_d', 'dom_d_shadowed']) {
              try {
                const ms = kernel.bind<Caller>(name).run('noarg', n);
                console.log(`${name}: ${n} calls in ${ms.toFixed(3)} ms`);
              } catch (e) {
                console.log(`${name}: ${isRpcError(e) ? `RpcError (${e.kind}): ${e.message}` : (e as Error).message}`);
              }
            }
            return true;
          }
          case 'crash': {
            const name = args[0];
            if (!name) return whichDomain('crash');
            const after = args.length === 1 ? undefined : args[1] === 'after' && args.length === 3 ? count(args[2]!) : null;
            if (after === null) {
              console.log(`crash: write "crash NAME" or "crash NAME after N", N a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`);
              return true;
            }
            try {
              kernel.injectFault(name, after === undefined ? 'now' : { afterCalls: after });
              if (after !== undefined) console.log(`${name} will crash at its call #${after} from now`);
            } catch (e) {
              console.log(`crash: ${(e as Error).message}`);
            }
            return true;
          }
          case 'restart':
            if (!args[0]) return whichDomain('restart');
            try {
              kernel.restart(args[0]);
              console.log(`restarted ${args[0]}`);
            } catch (e) {
              console.log(`restart: ${(e as Error).message}`);
            }
            return true;
          case 'exit':
          case 'quit':
            return false;
          default:
            console.log(`unknown command "${cmd}"; type "help"`);
            return true;
        }
      };
      rl.prompt();
      await new Promise<void>((resolve) => {
        rl.on('line', (line) => {
          if (run(line)) rl.prompt();
          else rl.close();
        });
        rl.on('close', () => resolve());
      });
      kernel.shutdown();
    });
}
