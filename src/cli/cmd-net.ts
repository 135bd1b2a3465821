/**
 * `redleaf net <app> [--backend pktgen|loopback|tap] [--seconds N] [--shadow] ...`: run a packet app
 * domain (l2fwd, maglev) on the NIC driver domain (optionally behind the NIC shadow) and print
 * live packet rates and the process's CPU use once per second. `--interrupts` runs the app in
 * interrupt mode (NetApp.serve: it sleeps until an RX interrupt whenever there is nothing to
 * receive) instead of polling. `--crash-every <s>` injects a driver fault periodically to show
 * recovery (with --shadow). An option of another backend or app is refused, not ignored.
 */
import { Command, InvalidArgumentError } from 'commander';
import { bootNet } from '../host/net.js';
import type { NicBackendConfig } from '../devices/nic/index.js';
import { numberOption } from './options.js';
import { MAX_APP_BACKENDS } from '../domains/maglev/index.js';

/** --rate: 'unpaced', 'line', or frames per second from 1 (its upper bound, line rate, depends on --frame-size: startNic checks it). */
const rateArg = (v: string): 'unpaced' | 'line' | number => {
  if (v === 'unpaced' || v === 'line') return v;
  const n = Number(v);
  if (!(n >= 1 && Number.isFinite(n))) throw new InvalidArgumentError("--rate must be 'unpaced', 'line' or frames per second (from 1 up to 10 GbE line rate for the frame size)");
  return n;
};
const rxHashArg = (v: string): 'nic' | 'software' => {
  if (v === 'nic' || v === 'software') return v;
  throw new InvalidArgumentError("--rx-hash must be 'nic' (the NIC's RSS hash of each frame) or 'software' (maglev hashes each header itself)");
};

/**
 * Options that mean something only with some backends or apps: given with another, they are
 * refused, not silently ignored (who wrote `--rate line --backend loopback` expected a paced run).
 */
const SCOPED_OPTIONS: Record<string, { flag: string; backends?: readonly string[]; apps?: readonly string[] }> = {
  ifname: { flag: '--ifname', backends: ['tap'] },
  flows: { flag: '--flows', backends: ['pktgen'] },
  rate: { flag: '--rate', backends: ['pktgen'] },
  seed: { flag: '--seed', backends: ['loopback'] },
  frameSize: { flag: '--frame-size', backends: ['pktgen', 'loopback'] },
  backends: { flag: '--backends', apps: ['maglev'] },
  dropBackendEvery: { flag: '--drop-backend-every', apps: ['maglev'] },
  rxHash: { flag: '--rx-hash', apps: ['maglev'] },
};

/** The first option given on the command line that `app` on `backend` has no use for, as an error. */
function misplacedOption(cmd: Command, app: string, backend: string): Error | null {
  for (const [key, { flag, backends, apps }] of Object.entries(SCOPED_OPTIONS)) {
    if (cmd.getOptionValueSource(key) !== 'cli') continue;
    if (backends && !backends.includes(backend)) return new Error(`${flag} is for the ${backends.join(' and ')} backend${backends.length > 1 ? 's' : ''}, not ${backend}`);
    if (apps && !apps.includes(app)) return new Error(`${flag} is for ${apps.join(' and ')}, not ${app}`);
  }
  return null;
}

export function register(program: Command): void {
  const net = program
    .command('net')
    .description('run a network app domain (l2fwd | maglev) on the NIC driver domain')
    .argument('<app>', 'l2fwd (swap MACs, send back) | maglev (Maglev load balancer)')
    .option('--backend <kind>', 'NIC backend: pktgen | loopback | tap (a Linux TAP interface; needs root)', 'pktgen')
    .option('--ifname <name>', 'tap: the TAP interface to attach to (created if missing)', 'rltap0')
    .option('--seconds <n>', 'run time in seconds', numberOption('--seconds', 0.1, 86400, false), 5)
    .option('--shadow', 'put the NIC shadow (transparent driver recovery) under the app', false)
    .option('--batch <n>', 'buffers per call (RedLeaf: 32)', numberOption('--batch', 1, 1024), 32)
    .option('--frame-size <n>', 'pktgen frame size (60..1514) / loopback seed frame size', numberOption('--frame-size', 60, 1514), 60)
    .option('--flows <n>', "pktgen flows (2^20 by default: the million flows bench net's maglev runs with)", numberOption('--flows', 1, 1 << 22), 1 << 20)
    .option('--rate <r>', "pktgen rate: 'unpaced', 'line' or frames per second", rateArg, 'unpaced' as const)
    .option('--seed <n>', 'loopback: frames to seed the loop with', numberOption('--seed', 1, 100000), 256)
    .option('--crash-every <s>', 'inject a driver fault every s seconds (use with --shadow)', numberOption('--crash-every', 0.01, 3600, false))
    .option('--interrupts', 'interrupt mode: sleep until an RX interrupt when there is nothing to receive, instead of polling', false)
    .option('--backends <n>', 'maglev: backend servers to balance over (each gets a near-equal share of the 65,537-entry table)', numberOption('--backends', 1, MAX_APP_BACKENDS), 16)
    .option('--drop-backend-every <s>', 'maglev: remove its last backend every s seconds, a backend-set change under traffic (flows of the others keep their backend)', numberOption('--drop-backend-every', 0.01, 3600, false))
    .option('--rx-hash <source>', "maglev: where each frame's flow hash comes from: 'nic' (its RSS hash, in the RX descriptor: no header read) or 'software' (maglev reads and hashes the header)", rxHashArg, 'nic' as const)
    .option('--queues <n>', 'queue pairs of the NIC (flows spread over them by RSS; the app serves every one)', numberOption('--queues', 1, 16), 1)
    .action(async (app: string, o: { backend: string; ifname: string; seconds: number; shadow: boolean; batch: number; frameSize: number; flows: number; rate: 'unpaced' | 'line' | number; seed: number; crashEvery?: number; dropBackendEvery?: number; interrupts: boolean; queues: number; backends: number; rxHash: 'nic' | 'software' }) => {
      if (app !== 'l2fwd' && app !== 'maglev') throw new Error(`unknown net app "${app}"; try l2fwd or maglev`);
      if (o.dropBackendEvery !== undefined && o.backends < 2) throw new Error(`--drop-backend-every needs --backends of 2 or more (got ${o.backends}): the last backend is never removed`);
      const backends: Record<string, NicBackendConfig> = {
        pktgen: { kind: 'pktgen', pktgen: { frameSize: o.frameSize, flows: o.flows, rate: o.rate } },
        loopback: { kind: 'loopback' },
        tap: { kind: 'tap', ifname: o.ifname },
      };
      // Own keys only: "constructor" or "__proto__" found Object's and crashed the NIC's boot.
      const backend = Object.hasOwn(backends, o.backend) ? backends[o.backend] : undefined;
      if (!backend) throw new Error(`unknown backend "${o.backend}"; try pktgen, loopback or tap`);
      const misplaced = misplacedOption(net, app, o.backend);
      if (misplaced) throw misplaced;
      const boot = await bootNet({
        backend,
        shadow: o.shadow,
        app,
        appConfig: app === 'maglev' ? { backends: o.backends, rxHash: o.rxHash } : {},
        queues: o.queues,
      });
      try {
        const a = boot.app!;
        if (o.backend === 'loopback') a.seed(o.seed, o.frameSize);
        console.log(`${app}${app === 'maglev' ? ` over ${o.backends} backends (${o.rxHash === 'nic' ? "the NIC's" : 'its own'} flow hash)` : ''} on ${o.backend}${o.shadow ? ' behind nic_shadow' : ''}, ${o.queues} queue(s), batch ${o.batch}, ${o.interrupts ? 'interrupt' : 'poll'} mode, ${o.seconds} s`);
        const t0 = performance.now();
        let lastT = t0;
        let lastCpu = process.cpuUsage();
        let last = boot.appStats()!;
        /** An event every `seconds` (never if undefined): whether it is due at `now` (if so, the next is `seconds` on). */
        const every = (seconds: number | undefined): ((now: number) => boolean) => {
          let last = t0;
          return (now) => {
            if (seconds === undefined || now - last < seconds * 1000) return false;
            last = now;
            return true;
          };
        };
        const crashDue = every(o.crashEvery);
        const dropDue = every(o.dropBackendEvery);
        /** A line's time since the start. */
        const stamp = (now: number): string => `${((now - t0) / 1000).toFixed(1).padStart(5)} s`;
        let liveBackends = o.backends;
        let total = 0;
        /** One line of rates over the time since the last line (lastT .. now). */
        const report = (now: number): void => {
          // App counters are monotonic (device counters restart with the driver).
          const s = boot.appStats()!;
          const n = boot.netStats();
          const dt = (now - lastT) / 1000;
          const rx = (s.rxFrames - last.rxFrames) / dt / 1e6;
          const tx = (s.txFrames - last.txFrames) / dt / 1e6;
          const gbps = ((s.rxBytes - last.rxBytes) * 8) / dt / 1e9;
          const loop = o.backend === 'loopback' ? ` (loop frames lost and re-seeded ${s.loopLost})` : '';
          const extra = o.shadow ? `  restarts ${n.restarts}  lost ${n.framesLost}${loop}  last restart ${n.lastRestartMs.toFixed(2)} ms` : '';
          // CPU of the whole process (this thread and the NIC model's), in % of one core.
          const cpu = process.cpuUsage(lastCpu);
          const cpuPct = ((cpu.user + cpu.system) / 1000 / (now - lastT)) * 100;
          console.log(`${stamp(now)}  rx ${rx.toFixed(3)} Mpps  tx ${tx.toFixed(3)} Mpps  ${gbps.toFixed(2)} Gb/s  cpu ${cpuPct.toFixed(0)}%${extra}`);
          last = s;
          lastT = now;
          lastCpu = process.cpuUsage();
        };
        const driverOf = () => (boot.driverName ? boot.kernel.get(boot.driverName) : undefined);
        /** Without the shadow nothing restarts a dead driver, and the app's calls fail from then on: why, in words. */
        const deadWithoutShadow = (): Error | null => {
          const driver = driverOf();
          if (o.shadow || driver === undefined || driver.live) return null;
          return new Error(`the NIC driver ${driver.name} died (${driver.deathCause ?? 'dead'}${driver.lastFault ? `: ${driver.lastFault.message}` : ''}); without --shadow nothing restarts it (add --shadow to see it recovered under traffic)`);
        };
        /** One stretch of running: the app forwards for up to 50 ms, then crashes, backend changes and report lines fall due. */
        const stretch = async (): Promise<void> => {
          total += o.interrupts ? await a.serve(o.batch, 50) : a.run('fwd', o.batch, 50);
          await new Promise((r) => setImmediate(r));
          const now = performance.now();
          const gone = deadWithoutShadow();
          if (gone !== null) throw gone;
          const driver = driverOf();
          if (driver?.live && crashDue(now)) {
            boot.kernel.injectFault(driver.name, { afterCalls: 1 });
          }
          if (liveBackends > 1 && dropDue(now)) {
            const tracked = boot.appStats()!.flows;
            liveBackends = a.backends(liveBackends - 1);
            console.log(`${stamp(now)}  backends ${liveBackends + 1} -> ${liveBackends} (${tracked} flows were tracked)${liveBackends === 1 ? '; the last one stays' : ''}`);
          }
          if (now - lastT >= 1000) report(now);
        };
        try {
          while (performance.now() - t0 < o.seconds * 1000) await stretch();
          // The run's last stretch (under a second since the last line) gets its line too.
          const end = performance.now();
          if (end - lastT >= 100) report(end);
        } catch (e) {
          // A call into the dead driver failed (the app's, or the statistics'): the driver's death is the news.
          throw deadWithoutShadow() ?? e;
        }
        const as = boot.appStats()!;
        console.log(`done: ${total} frames forwarded, app stats ${JSON.stringify(as)}`);
      } finally {
        await boot.stop();
      }
    });
  net.addHelpText('after', '\nExamples:\n  redleaf net l2fwd --backend pktgen --seconds 5\n  redleaf net l2fwd --backend pktgen --rate 1000 --interrupts   # a quiet link: compare the cpu column without --interrupts\n  redleaf net maglev --backend loopback --shadow --crash-every 1\n  redleaf net maglev --backends 16 --drop-backend-every 2 --seconds 8   # the rate as backends go\n  sudo redleaf net l2fwd --backend tap --ifname rltap0   # then send frames to rltap0\n');
}
