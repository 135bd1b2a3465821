/**
 * init: the first process (xv6's init). Opens the console as fds 0, 1, 2 (making /dev/console
 * first if the image has none), then runs /bin/sh in a process group of its own and reaps
 * children. When the shell exits normally, init exits with its status (the system powers off);
 * when it crashed or was killed, init says so and starts a new one.
 */
import {
  DEV_CONSOLE, ERRNO, O_RDWR, PGID_NEW, STATUS_CRASHED, STATUS_INTERRUPTED, STATUS_KILLED, type Program,
} from '../../interfaces/rv6.js';
import { program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const SHELL = '/bin/sh';

/** Statuses of a shell that did not exit on its own. */
const ABNORMAL: ReadonlyMap<number, string> = new Map([
  [STATUS_CRASHED, 'crashed'],
  [STATUS_KILLED, 'was killed'],
  [STATUS_INTERRUPTED, 'was interrupted'],
]);

export function init(sys: Sys): Program {
  return program(sys, 'init', async (u) => {
    const con = await openConsole(u);
    if (con < 0) return 1; // nowhere to say why: the core logs init's exit status
    for (;;) {
      await u.eprint(`init: starting ${SHELL}\n`);
      const pid = await u.rv6.spawn(SHELL, 'sh', 0, 1, 2, PGID_NEW);
      if (pid < 0) return u.fail(`cannot start ${SHELL}`, pid);
      const status = await reap(u, pid);
      const what = ABNORMAL.get(status);
      if (what === undefined) return status;
      await u.eprint(`init: ${SHELL} (pid ${pid}) ${what} (status ${status}); starting a new one\n`);
    }
  });
}

/** Open the console on fds 0, 1 and 2; 0 or -errno. */
async function openConsole(u: Ulib): Promise<number> {
  let fd = await u.rv6.open('/dev/console', O_RDWR);
  if (fd === -ERRNO.ENOENT) {
    const made = await u.rv6.mkdir('/dev');
    if (made < 0 && made !== -ERRNO.EEXIST) return made;
    const r = await u.rv6.mknod('/dev/console', DEV_CONSOLE, 0);
    if (r < 0) return r;
    fd = await u.rv6.open('/dev/console', O_RDWR);
  }
  if (fd < 0) return fd;
  // init starts with no open files, so the console is fd 0; dup it to 1 and 2.
  while (fd < 2) {
    fd = await u.rv6.dup(0);
    if (fd < 0) return fd;
  }
  return 0;
}

/** Reap children (orphans included) until `pid` exits; its status. */
async function reap(u: Ulib, pid: number): Promise<number> {
  for (;;) {
    const w = await u.wait(-1);
    if (w.pid === pid) return w.status;
    if (w.pid < 0) return STATUS_KILLED; // the shell is gone without a status: start a new one
  }
}
