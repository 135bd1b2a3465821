/**
 * `redleaf inspect [ARTIFACT...] [--json]`: what a domain artifact (.rldom) is, and whether this
 * kernel would load it. The loader's own checks run (Kernel.verify, in its order: signed, key
 * trusted, signature valid, content hash, interface fingerprint, the export a known interface),
 * and nothing is loaded. With no argument: every artifact this installation ships
 * (dist/artifacts, and its programs/, which `redleaf boot` installs as rv6's /bin), one line each.
 *
 * An ARTIFACT is a file path, the name of an installed domain or program (`nvme`, `ls`), or a
 * file in an rv6 image, written as for `redleaf cp`: `IMAGE:/bin/ls` (the image is mounted
 * read-only on the host to read it: a pending log is seen as recovered, and nothing is written).
 *
 * Exit codes: 0 every artifact would load; 1 one would be refused (its verdict names the check
 * and why); 2 one could not be read as an artifact at all (no such file or name, not an artifact).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { defaultTrustedKeys, keyIdOf, parseArtifact, type Artifact, type Manifest } from '../kernel/artifact.js';
import { printable } from '../kernel/errors.js';
import { KernelError } from '../kernel/kernel-error.js';
import { Kernel } from '../kernel/kernel.js';
import { artifactPath, artifactsDir, programArtifactPath, programsDir } from '../kernel/paths.js';
import { FINGERPRINT } from '../gen/idl.js';
import { alignColumns } from '../host/columns.js';
import { ImageError, withImageFs } from '../host/image.js';
import { formatSize, parseImageRef } from './options.js';

const EXIT_LOADS = 0;
const EXIT_REFUSED = 1;
const EXIT_UNREADABLE = 2;

/** What inspect reports of one artifact (--json prints a list of these). */
export interface Inspection {
  path: string;
  /** Null when the file is not an artifact at all (then `error` says why). */
  manifest: Omit<Manifest, 'signature'> | null;
  codeBytes: number;
  /** The manifest names a key this kernel trusts. */
  keyTrusted: boolean;
  /** The manifest's interface fingerprint is this kernel's. */
  fingerprintMatches: boolean;
  /** Would the kernel load it? */
  loads: boolean;
  /** Why not: the loader's error code and message (null when it loads). */
  error: { code: string; message: string } | null;
}

/**
 * An argument as an artifact path: a path as given, else an installed domain's or program's, else
 * a file of that name here (`redleaf inspect download`).
 */
function resolveArtifact(arg: string): string {
  if (arg.includes('/') || arg.endsWith('.rldom')) return arg;
  for (const p of [artifactPath(arg), programArtifactPath(arg)]) if (existsSync(p)) return p;
  if (existsSync(arg)) return arg;
  throw new KernelError('ENOENT', `no installed domain or program is named ${arg} (\`redleaf inspect\` lists them; or give a file path)`);
}

/** The artifact `arg` names (a file in an image, or resolveArtifact's), and where it was read. */
async function readArtifactOf(arg: string): Promise<{ path: string; artifact: Artifact }> {
  const ref = parseImageRef(arg);
  if (ref === null) {
    const path = resolveArtifact(arg);
    return { path, artifact: Kernel.readArtifact(path) };
  }
  const bytes = await withImageFs(ref.image, 'inspect', (fs) => fs.readFile(ref.path), { readOnly: true });
  return { path: arg, artifact: parseArtifact(Buffer.from(bytes).toString('utf8'), arg) };
}

/** Inspect the artifact `arg` names; never rejects: what goes wrong is in the result. */
async function inspectArtifact(arg: string): Promise<Inspection> {
  const out: Inspection = { path: arg, manifest: null, codeBytes: 0, keyTrusted: false, fingerprintMatches: false, loads: false, error: null };
  try {
    const { path, artifact: a } = await readArtifactOf(arg);
    out.path = path;
    const { signature: _signature, ...shown } = a.manifest;
    out.manifest = shown;
    out.codeBytes = Buffer.byteLength(a.code);
    const trusted = defaultTrustedKeys();
    out.keyTrusted = trusted.some((k) => keyIdOf(k) === a.manifest.keyId);
    out.fingerprintMatches = a.manifest.fingerprint === FINGERPRINT;
    Kernel.verify(a, trusted);
    out.loads = true;
  } catch (e) {
    // A KernelError from the loader's checks, an FsError from the image (ENOENT ...), or an ImageError.
    const code = e instanceof ImageError ? 'EIMAGE' : (e as { code?: unknown }).code;
    out.error = { code: typeof code === 'string' ? code : 'EIO', message: (e as Error).message };
  }
  return out;
}

/** Every artifact this installation ships: its domains, then its programs. */
function installedArtifacts(): string[] {
  return [artifactsDir, programsDir].flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.rldom')).sort().map((f) => join(d, f)) : []));
}

/** 'loads', 'refused' (an artifact the loader would not load) or 'unreadable' (no artifact at all). */
function outcome(r: Inspection): string {
  return r.loads ? 'loads' : r.manifest === null ? 'unreadable' : 'refused';
}

function verdict(r: Inspection): string {
  return r.loads ? 'loads' : `${outcome(r)}: ${r.error!.code}: ${r.error!.message}`;
}

/** One artifact, field by field. */
function describe(r: Inspection): string {
  const m = r.manifest;
  if (m === null) return [`artifact:   ${r.path}`, `verdict:    ${verdict(r)}`].map(printable).join('\n');
  return [
    `artifact:   ${r.path}`,
    `name:       ${m.name} (version ${m.version})`,
    `exports:    ${m.exports ?? '(nothing)'}`,
    `imports:    ${m.imports.length > 0 ? m.imports.join(', ') : '(none)'}`,
    `code:       ${formatSize(r.codeBytes)} (${r.codeBytes} bytes), sha256 ${m.contentHash}`,
    `signed by:  ${m.keyId === undefined ? '(unsigned)' : `key ${m.keyId} (${r.keyTrusted ? 'trusted by this kernel' : 'not trusted by this kernel'})`}`,
    `interfaces: fingerprint ${m.fingerprint} (${r.fingerprintMatches ? "this kernel's" : `this kernel's is ${FINGERPRINT}`})`,
    `verdict:    ${verdict(r)}`,
  ].map(printable).join('\n');
}

/** Many artifacts, a line each. */
function table(rs: Inspection[]): string {
  const rows = rs.map((r) => [
    printable(r.manifest?.name ?? r.path),
    printable(r.manifest?.exports ?? '-'),
    r.manifest === null ? '-' : printable(r.manifest.imports.join(',')) || '-',
    r.manifest === null ? '-' : formatSize(r.codeBytes),
    r.loads ? 'loads' : `${outcome(r)} (${r.error!.code})`,
  ]);
  const head = ['name', 'exports', 'imports', 'code', 'verdict'];
  const lines = alignColumns([head, ...rows]);
  // A refusal's reason, below the table: a line would not hold it.
  for (const r of rs) if (!r.loads) lines.push(printable(`${r.path}: ${verdict(r)}`));
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('show what a domain artifact is (name, interfaces, code hash, signer) and whether this kernel would load it')
    .argument('[artifacts...]', 'artifact files, names of installed domains or programs, or IMAGE:/path files in an rv6 image (default: every installed one)')
    .option('--json', 'print the results as JSON', false)
    .addHelpText('after', '\nExamples:\n  redleaf inspect              # every installed domain and program, a line each\n  redleaf inspect nvme ls      # by name\n  redleaf inspect ./my.rldom   # a file\n  redleaf inspect disk.img:/bin/ls   # a program in an rv6 image\n\nExit status: 0 all would load, 1 one would be refused, 2 one could not be read as an artifact.')
    .action(async (args: string[], o: { json: boolean }) => {
      const paths = args.length === 0 ? installedArtifacts() : args;
      if (paths.length === 0) throw new Error(`no artifacts in ${artifactsDir}: build them first (npm run build)`);
      const rs: Inspection[] = [];
      for (const p of paths) rs.push(await inspectArtifact(p));
      if (o.json) console.log(JSON.stringify(rs, null, 2));
      else console.log(rs.length === 1 && args.length === 1 ? describe(rs[0]!) : table(rs));
      process.exitCode = rs.some((r) => r.manifest === null) ? EXIT_UNREADABLE : rs.some((r) => !r.loads) ? EXIT_REFUSED : EXIT_LOADS;
    });
}
