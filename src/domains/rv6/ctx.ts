/**
 * What the parts of the rv6 core share: its capabilities (sys, the fs domain, the program loader)
 * and its state (the console, the process table). Built once by index.ts.
 */
import type { Sys } from '../../runtime/sys.js';
import type { ProgramLoader } from '../../runtime/rv6host.js';
import type { Console } from './console.js';
import type { FsClient } from './fsclient.js';
import type { ProcTable } from './proc.js';

export interface Ctx {
  readonly sys: Sys;
  readonly fs: FsClient;
  readonly loader: ProgramLoader;
  readonly console: Console;
  readonly procs: ProcTable;
  /** sys.now() at boot (uptime). */
  readonly bootAt: number;
  /** Cleanups of ending processes still in progress (shutdown waits for them). */
  readonly ending: Set<Promise<void>>;
  /** Called once, when init (pid 1) has ended, with its status. */
  readonly initEnded: (status: number) => void;
}
