/**
 * Host helper: boot rv6 — the block stack (an NVMe controller on an image file with its driver, or
 * a RAM disk preloaded with an image; either optionally behind the block shadow), the fs domain on
 * it, and the rv6 core with its two host capabilities (the program loader and the console output)
 * — for the CLI, tests and benchmarks. It does not start init: the caller calls
 * `core.boot(path, argv)`.
 *
 * The program loader is the trusted half of exec: it parses the artifact text the core read from
 * the rv6 file system, has the kernel verify it (signature by a trusted key, content hash,
 * interface fingerprint — the same checks as every domain), refuses anything that is not a
 * Program importing nothing, and hands the core a proxy whose caller is the core. The core can
 * terminate only the programs it loaded.
 *
 * Invariants: on a failure during boot everything started so far is stopped before the error is
 * thrown; `stop()` is idempotent and leaves nothing holding the event loop.
 */
import { readFileSync } from 'node:fs';
import { sha256, parseArtifact, type Artifact } from '../kernel/artifact.js';
import { Kernel, type Placement } from '../kernel/kernel.js';
import { artifactPath } from '../kernel/paths.js';
import type { Program, Rv6Boot, Rv6Fs } from '../interfaces/rv6.js';
import type { ConsoleOut, ProgramLoader } from '../runtime/rv6host.js';
import { alignColumns } from './columns.js';
import { bootFs } from './bdev-image.js';
import { bootMembdev, bootStorage, loadBlockShadow, type Storage } from './storage.js';

export interface Rv6Options {
  /** Disk image file: an NVMe controller on it, the nvme driver and (by default) the block shadow. */
  image?: string;
  /** Or: a RAM disk (membdev) preloaded with a copy of this image (bytes or the path of an image file). */
  membdevImage?: string | Uint8Array;
  /**
   * The NVMe namespace write-protected (the image file opened for reading only), so the fs domain
   * mounts read-only and nothing writes the image (boot --read-only). NVMe only.
   */
  readOnly?: boolean;
  /** Block shadow in front of the block driver (default: true on NVMe, false on membdev). */
  shadow?: boolean;
  /** Console output. */
  console: (text: string) => void;
  /** Physical memory of the kernel (default 256 MiB). */
  physBytes?: number;
  log?: (domain: string, line: string) => void;
  /** fs domain configuration (nbuf, ninode). */
  fsConfig?: Record<string, number>;
  /**
   * Where user programs run (default 'thread'): 'worker' gives each process's program its own
   * worker thread (ARCHITECTURE §6), preemptible, at the price of starting a thread per exec.
   */
  programPlacement?: Placement;
}

export interface Rv6System {
  kernel: Kernel;
  /** The core's Rv6Boot, bound to the kernel. */
  core: Rv6Boot;
  /** The NVMe stack, or null on a RAM disk. */
  storage: Storage | null;
  /** The block driver domain (nvme or membdev), for crash injection. */
  driverName: string;
  /** The BDev domain the file system is bound to: the block shadow when there is one, else the driver. */
  bdevName: string;
  /** Shut rv6 down (sync + unmount), terminate its domains, stop the device and the kernel. Idempotent. */
  stop(): Promise<void>;
}

export const CORE_DOMAIN = 'rv6';
export const FS_DOMAIN = 'fs';
/** How long restartFs waits for a dead fs instance's block I/O to land. */
const FS_QUIESCE_MS = 5000;
/** Parsed program artifacts kept by content, so that the kernel's per-name load recipes share one copy of a program's code. */
const ARTIFACT_CACHE = 32;

/** The ProgramLoader capability of the core named `coreName` on `kernel`. */
export function programLoader(kernel: Kernel, coreName = CORE_DOMAIN, placement: Placement = 'thread'): ProgramLoader {
  /** Live programs this loader made (the only domains the core may terminate). */
  const loaded = new Set<string>();
  /** Every program instance ever made (`domains` leaves the ended ones out). */
  const programs = new Set<string>();
  const cache = new Map<string, Artifact>();
  const parse = (text: string, name: string): Artifact => {
    const key = sha256(text);
    let a = cache.get(key);
    if (a === undefined) {
      a = parseArtifact(text, `program ${name}`);
      if (cache.size >= ARTIFACT_CACHE) cache.delete(cache.keys().next().value!);
      cache.set(key, a);
    }
    return a;
  };
  return {
    async load(text: string, name: string): Promise<Program | string> {
      try {
        const a = parse(text, name);
        const m = a.manifest;
        if (m.exports !== 'Program') return `${m.name} is not a program: it exports ${m.exports ?? 'nothing'}, not Program`;
        if (m.imports.length > 0) return `${m.name} is not a program: it imports ${m.imports.join(', ')} (a program's only authority is its rv6 interface)`;
        const core = kernel.get(coreName);
        if (!core?.live) return `the rv6 core ${coreName} is not live`;
        // A name the kernel knows is taken unless this loader made it: a dead driver's or file
        // system's name, reused, would make its restart recipe and its shadow find the program.
        if (kernel.get(name) !== undefined && !programs.has(name)) return `the name ${name} belongs to a domain the rv6 core did not load`;
        // A program on a worker boots without holding the kernel thread (and everything on it).
        const d = await kernel.loadAsync(a, { name, placement });
        programs.add(name);
        if (!core.live) {
          kernel.terminate(d, 'terminated');
          return `the rv6 core ${coreName} died while ${name} loaded`;
        }
        loaded.add(name);
        return kernel.bind<Program>(d, core);
      } catch (e) {
        return (e as Error).message;
      }
    },
    terminate(name: string): void {
      if (!loaded.delete(name)) return;
      kernel.terminate(name, 'terminated');
    },
    domains(): string {
      const rows = kernel.list().filter((d) => d.state === 'live' || !programs.has(d.name));
      const head = ['NAME', 'STATE', 'PLACE', 'CALLS', 'FAULTS', 'RESTARTS', 'HEAP', 'SLOTS'];
      const table = [head, ...rows.map((d) => [d.name, d.state, d.placement, d.calls, d.faults, d.restarts, d.heapBytes, d.heapSlots].map(String))];
      return alignColumns(table, ' ').join('\n') + '\n';
    },
    async restartFs(): Promise<Rv6Fs | string> {
      const dead = kernel.get(FS_DOMAIN);
      const core = kernel.get(coreName);
      if (dead === undefined || dead.live) return `the fs domain is ${dead === undefined ? 'missing' : 'live'}: nothing to restart`;
      if (!core?.live) return `the rv6 core ${coreName} is not live`;
      if (!(await kernel.callsFromSettled(dead, FS_QUIESCE_MS))) return `block I/O of the dead instance was still in flight after ${FS_QUIESCE_MS} ms`;
      try {
        return kernel.bind<Rv6Fs>(kernel.restart(FS_DOMAIN), core);
      } catch (e) {
        return (e as Error).message;
      }
    },
    crash(name: string, afterCalls: number): string | null {
      try {
        kernel.injectFault(name, { afterCalls: afterCalls + 1 });
        return null;
      } catch (e) {
        return (e as Error).message;
      }
    },
  };
}

export async function bootRv6(opts: Rv6Options): Promise<Rv6System> {
  if ((opts.image === undefined) === (opts.membdevImage === undefined)) {
    throw new Error('bootRv6: give exactly one of image (a disk image file for the NVMe controller) or membdevImage (a RAM disk image)');
  }
  if (opts.readOnly && opts.image === undefined) throw new Error('bootRv6: readOnly is for an image file (the NVMe namespace write-protected), not a RAM disk');
  const kernel = new Kernel({ physBytes: opts.physBytes ?? 256 << 20, ...(opts.log ? { log: opts.log } : {}) });
  let storage: Storage | null = null;
  const stopAll = async (core: Rv6Boot | null): Promise<void> => {
    if (core !== null && kernel.get(CORE_DOMAIN)?.live) {
      try {
        await core.shutdown();
      } catch {
        // the core died: nothing left to sync through it
      }
    }
    for (const d of kernel.list()) if (d.state === 'live' && d.name !== storage?.driverName && d.name !== storage?.shadowName) kernel.terminate(d.name, 'stopped');
    await storage?.stop();
    kernel.shutdown();
  };
  try {
    let bdevDomain: string;
    let driverName: string;
    if (opts.image !== undefined) {
      storage = await bootStorage({ kernel, image: opts.image, shadow: opts.shadow ?? true, ...(opts.readOnly ? { readOnly: true } : {}) });
      bdevDomain = storage.shadowName ?? storage.driverName;
      driverName = storage.driverName;
    } else {
      const image = opts.membdevImage!;
      driverName = 'membdev';
      bootMembdev(kernel, { name: driverName, memory: new Uint8Array(typeof image === 'string' ? readFileSync(image) : image).buffer });
      bdevDomain = driverName;
      if (opts.shadow === true) {
        bdevDomain = `${driverName}_shadow`;
        loadBlockShadow(kernel, driverName, bdevDomain);
      }
    }
    bootFs(kernel, bdevDomain, { name: FS_DOMAIN, ...(opts.fsConfig ?? {}) });
    // A failing host console must not become a panic of the core (an exception out of a capability).
    const out: ConsoleOut = {
      write: (text: string) => {
        try {
          opts.console(text);
        } catch (e) {
          (opts.log ?? ((d, line) => process.stderr.write(`[${d}] ${line}\n`)))(CORE_DOMAIN, `console output failed: ${(e as Error).message}`);
        }
      },
    };
    kernel.load(artifactPath('rv6'), { name: CORE_DOMAIN, imports: [FS_DOMAIN, { object: programLoader(kernel, CORE_DOMAIN, opts.programPlacement) }, { object: out }] });
    const core = kernel.bind<Rv6Boot>(CORE_DOMAIN);
    let stopped: Promise<void> | null = null;
    return { kernel, core, storage, driverName, bdevName: bdevDomain, stop: () => (stopped ??= stopAll(core)) };
  } catch (e) {
    await stopAll(null);
    throw e;
  }
}
