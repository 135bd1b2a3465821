/** kill PID...: terminate each process (its status becomes 137, as after SIGKILL). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'kill', async (u) => {
    const pids = u.args.slice(1);
    if (pids.length === 0) return u.usage('kill PID...');
    const bad = pids.find((p) => !/^[0-9]+$/.test(p));
    if (bad !== undefined) return u.usage('kill PID...', `${bad}: not a process id`);
    return u.forEach(pids, (pid) => u.rv6.kill(Number(pid)));
  });
}
