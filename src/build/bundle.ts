/**
 * Domain bundling and signing (trusted build).
 *
 * A domain is a folder with `domain.json` ({ name, version?, exports, imports }) and `index.ts`
 * exporting `init`. The build:
 *  1. refuses any import that does not resolve inside the domain's own folder, the interface
 *     folder, the runtime library or the generated shadow skeletons (file, import and reason),
 *     before and after following symbolic links;
 *  2. instruments every source file (deadline checks, await guards; see instrument.ts);
 *     type-checks those `tsc -p tsconfig.json` does not (a folder outside the project; typecheck.ts);
 *  3. bundles with esbuild into one function expression taking the kernel's deadline hooks and the
 *     instance's token: `($rl_tick, $rl_aw, $rl_i) => module.exports`, called once per instance.
 *     The hooks are the same two functions for every instance (the token names whose deadline a
 *     check is): every function of a domain calls $rl_tick, and V8 inlines a call it has only seen
 *     reach one function with a guard on that function — hooks made per instance failed that
 *     guard in all of a restarted driver's optimized code at once (probes/restart-cpu.js, RESULTS
 *     session 21);
 *  4. hashes, builds the manifest (with the interface fingerprint) and signs it.
 */
import { readFileSync, readdirSync, realpathSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as esbuild from 'esbuild';
import ts from 'typescript';
import type { KeyObject } from 'node:crypto';
import { instrument, InstrumentError } from './instrument.js';
import { typeProblems } from './typecheck.js';
import { sha256, signManifest, type Artifact, type Manifest } from '../kernel/artifact.js';

export interface DomainSpec {
  name: string;
  version?: string;
  exports: string | null;
  imports: string[];
}

export class BuildError extends Error {}

export interface BundleOptions {
  /** Repository root (the folder holding src/). */
  root: string;
  fingerprint: string;
  /** The interfaces the IDL compiler generated (a domain.json may name no other). */
  interfaces: readonly string[];
  key: KeyObject;
}

/** What `build idl` left in src/gen/fingerprint.json: the fingerprint and the interfaces' names. */
export function readGenerated(root: string): { fingerprint: string; interfaces: string[] } {
  const path = join(root, 'src', 'gen', 'fingerprint.json');
  const read = (): Partial<Record<'fingerprint' | 'interfaces', unknown>> | null => {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as Partial<Record<'fingerprint' | 'interfaces', unknown>> | null;
    } catch {
      return null; // missing or damaged (build domains run before build idl): said below, not as a stack trace
    }
  };
  const g = read();
  if (typeof g?.fingerprint !== 'string' || !Array.isArray(g.interfaces)) {
    throw new BuildError(`${path}: missing or not from this build's IDL compiler: run \`node dist/src/build/main.js idl\` first (npm run build does both)`);
  }
  return { fingerprint: g.fingerprint, interfaces: g.interfaces as string[] };
}

/** The fields a domain.json may have. Any other is refused: a misspelt optional field ("verison") would otherwise be dropped without a word. */
const SPEC_FIELDS = ['name', 'version', 'exports', 'imports'];

/**
 * `dir`'s domain.json, checked field by field: each problem names the field, what it must be and
 * what was there, so that nothing the loader would refuse (parseArtifact) gets signed.
 */
export function readDomainSpec(dir: string): DomainSpec {
  const path = join(dir, 'domain.json');
  const bad = (why: string): BuildError => new BuildError(`${path}: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw bad('missing: a domain folder needs a domain.json ({ "name", "exports", "imports" }) beside its index.ts');
    throw bad(`${code === undefined ? 'not valid JSON' : 'unreadable'} (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`must be a JSON object { "name", "exports", "imports" }, got ${JSON.stringify(raw)}`);
  const spec = raw as Record<string, unknown>;
  const extra = Object.keys(spec).filter((k) => !SPEC_FIELDS.includes(k));
  if (extra.length > 0) throw bad(`unknown field(s) ${extra.map((k) => `"${k}"`).join(', ')}: a domain.json has only ${SPEC_FIELDS.map((k) => `"${k}"`).join(', ')}`);
  if (typeof spec.name !== 'string' || !/^[a-z][a-z0-9_-]*$/.test(spec.name)) throw bad(`"name" must be a lower-case identifier ([a-z][a-z0-9_-]*), got ${JSON.stringify(spec.name)}`);
  if (spec.version !== undefined && typeof spec.version !== 'string') throw bad(`"version" must be a string (or left out: "0.1.0"), got ${JSON.stringify(spec.version)}`);
  if (spec.exports !== null && typeof spec.exports !== 'string') throw bad(`"exports" must be an interface name or null, got ${JSON.stringify(spec.exports)}`);
  if (!Array.isArray(spec.imports) || !spec.imports.every((i) => typeof i === 'string')) throw bad(`"imports" must be a list of interface names ([] for none), got ${JSON.stringify(spec.imports)}`);
  return spec as unknown as DomainSpec;
}

/**
 * Every domain folder (one with a domain.json) under `sources` (source folder -> artifact folder,
 * relative to `root`), with its artifact folder. Two folders may not give one name: the second
 * artifact would overwrite the first without a word, and the loader and `redleaf inspect NAME`
 * (which looks in the domains', then the programs' folder) would find only one of them.
 */
export function domainFolders(root: string, sources: Readonly<Record<string, string>>): { dir: string; out: string }[] {
  const found: { dir: string; out: string }[] = [];
  const seen = new Map<string, string>();
  for (const [src, out] of Object.entries(sources)) {
    const base = join(root, src);
    if (!existsSync(base)) continue;
    for (const entry of readdirSync(base).sort()) {
      const dir = join(base, entry);
      if (!existsSync(join(dir, 'domain.json'))) continue;
      const { name } = readDomainSpec(dir);
      const other = seen.get(name);
      if (other !== undefined) throw new BuildError(`${join(dir, 'domain.json')}: the name "${name}" is taken by ${join(other, 'domain.json')}: give one of them another name`);
      seen.set(name, dir);
      found.push({ dir, out: join(root, out) });
    }
  }
  return found;
}

export async function bundleDomain(dir: string, opts: BundleOptions): Promise<Artifact> {
  const spec = readDomainSpec(dir);
  // An export the IDL does not know would be signed and load, and fail only when bound (ENOIFACE):
  // refuse it here, where the author can fix it. So is a shadow's supervisor capability over one
  // ("Supervisor:X"). Other imports may name host capabilities (objects the host passes in, such
  // as membdev's RamDiskMemory), which no interface file declares.
  const supervised = spec.imports.filter((i) => i.startsWith('Supervisor:')).map((i) => i.slice('Supervisor:'.length));
  const unknown = [...(spec.exports === null ? [] : [spec.exports]), ...supervised].filter((i) => !opts.interfaces.includes(i));
  if (unknown.length > 0) {
    throw new BuildError(`${join(dir, 'domain.json')}: no interface named ${unknown.join(', ')} in src/interfaces (known: ${opts.interfaces.join(', ')}): declare it there, or fix the name`);
  }
  const domainDir = resolve(dir);
  const allowed = [domainDir, join(opts.root, 'src', 'interfaces'), join(opts.root, 'src', 'runtime')];
  const allowedFiles = [join(opts.root, 'src', 'gen', 'shadows.ts')];
  const inside = (p: string, d: string): boolean => p === d || p.startsWith(d + sep);
  const permitted = (p: string, dirs: readonly string[], files: readonly string[]): boolean => dirs.some((d) => inside(p, d)) || files.includes(p);
  // The same, after symbolic links: a link in the domain's folder to a file elsewhere was bundled.
  const real = (p: string): string => (existsSync(p) ? realpathSync(p) : p);
  const [realAllowed, realAllowedFiles] = [allowed.map(real), allowedFiles.map(real)];
  const problems: string[] = [];
  /** The domain's own source files, as the bundle reads them (what its type check covers). */
  const sources: string[] = [];
  const refused = (why: readonly string[]): BuildError => new BuildError(`domain ${spec.name} refused by the trusted build:\n  ${why.join('\n  ')}`);

  const policy: esbuild.Plugin = {
    name: 'redleaf-domain-policy',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') {
          const entry = resolve(args.path);
          const target = realpathSync(entry);
          if (!permitted(target, realAllowed, realAllowedFiles)) problems.push(`${relative(opts.root, entry)} refused: it links to ${target}, which is outside the domain's folder`);
          return { path: entry };
        }
        const from = relative(opts.root, args.importer);
        if (!args.path.startsWith('.')) {
          problems.push(`${from}: import "${args.path}" refused: a domain may import only the interfaces and the domain runtime library`);
          return { path: args.path, external: true };
        }
        let p = resolve(dirname(args.importer), args.path);
        if (p.endsWith('.js')) p = p.slice(0, -3) + '.ts';
        else if (!p.endsWith('.ts')) p = existsSync(p + '.ts') ? p + '.ts' : join(p, 'index.ts');
        const outside = (why: string): esbuild.OnResolveResult => {
          problems.push(`${from}: import "${args.path}" refused: ${why} is outside the domain's folder, the interfaces and the runtime library`);
          return { path: p, external: true };
        };
        if (!permitted(p, allowed, allowedFiles)) return outside(relative(opts.root, p));
        if (!existsSync(p)) {
          problems.push(`${from}: import "${args.path}": no such file ${relative(opts.root, p)}`);
          return { path: p, external: true };
        }
        const target = realpathSync(p);
        if (!permitted(target, realAllowed, realAllowedFiles)) return outside(`${relative(opts.root, p)} links to ${target}, which`);
        return { path: p };
      });
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        if (inside(args.path, domainDir)) sources.push(args.path);
        const src = readFileSync(args.path, 'utf8');
        try {
          return { contents: instrument(src, relative(opts.root, args.path)), loader: 'js' };
        } catch (e) {
          if (e instanceof InstrumentError) {
            problems.push(e.message);
            return { contents: '', loader: 'js' };
          }
          throw e;
        }
      });
    },
  };

  if (!existsSync(join(domainDir, 'index.ts'))) throw new BuildError(`${join(domainDir, 'index.ts')}: missing: a domain's entry point is index.ts, exporting init(sys, ...imports)`);
  let result: esbuild.BuildResult<{ write: false }> | null = null;
  try {
    result = await esbuild.build({
      entryPoints: [join(domainDir, 'index.ts')],
      bundle: true,
      write: false,
      format: 'cjs',
      platform: 'neutral',
      target: 'es2022',
      plugins: [policy],
      logLevel: 'silent',
      legalComments: 'none',
    });
  } catch (e) {
    // esbuild's own failures (a syntax error, top-level await, which a function-wrapped bundle
    // cannot have): its messages with file:line:col, not a stack trace of esbuild's internals.
    const errors = (e as Partial<esbuild.BuildFailure>).errors;
    if (!Array.isArray(errors)) throw e;
    const at = (l: esbuild.Location | null): string => (l === null ? '' : `${relative(opts.root, resolve(l.file))}:${l.line}:${l.column + 1}: `);
    problems.push(...errors.map((m) => at(m.location) + m.text));
  }
  problems.push(...initProblems(join(domainDir, 'index.ts'), relative(opts.root, join(domainDir, 'index.ts')), spec.imports));
  if (problems.length > 0 || result === null) throw refused(problems);
  // Only once the rest passed: a syntax error would be said twice, and a file refused above was never read.
  const typeErrors = typeProblems(opts.root, domainDir, sources);
  if (typeErrors.length > 0) throw refused(typeErrors);
  const body = result.outputFiles[0]!.text;
  const code = `(function ($rl_tick, $rl_aw, $rl_i) {\n"use strict";\nlet $rl_n = 0;\nconst module = { exports: {} };\nconst exports = module.exports;\n${body}\nreturn module.exports;\n})`;
  const refusals = evaluatorRefusals(body, opts.root);
  if (refusals.length > 0) throw refused(refusals);
  const manifest: Manifest = {
    name: spec.name,
    version: spec.version ?? '0.1.0',
    exports: spec.exports,
    imports: spec.imports,
    fingerprint: opts.fingerprint,
    contentHash: sha256(code),
  };
  return { manifest: signManifest(manifest, opts.key), code };
}

/**
 * What is wrong with the `init` that index.ts exports, as far as its own text tells: none exported
 * (a default export, a misspelling) failed every load with "does not export an init function";
 * one declaring more parameters than sys and the imports domain.json lists got undefined for the
 * rest, and failed inside, at load, with a TypeError. One with a rest parameter is not counted.
 *
 * Only an init declared in index.ts itself is checked, so only that one is accepted: `export
 * function init` or `export const init = ` a function or arrow. An init reaching the exports any
 * other way (`export { init } from './x.js'`, `export * from`, `export { start as init }`, `export
 * const init = start`, a `let` that can be reassigned, a class) is refused: its parameters are
 * not in this file, and following bindings across modules is the type checker's work, not this
 * check's; init can call code in other files instead.
 */
function initProblems(path: string, file: string, imports: readonly string[]): string[] {
  const sf = ts.createSourceFile(file, readFileSync(path, 'utf8'), ts.ScriptTarget.ES2022, true);
  const exported = (st: ts.Statement): boolean => ts.canHaveModifiers(st) && (ts.getModifiers(st)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) ?? false);
  const where = (n: ts.Node): string => {
    const { line, character } = sf.getLineAndCharacterOfPosition(n.getStart(sf));
    return `${file}:${line + 1}:${character + 1}`;
  };
  let params: ts.NodeArray<ts.ParameterDeclaration> | undefined;
  let at: ts.Node | undefined;
  /** Where init is exported in a form whose parameters this check cannot see. */
  let indirect: ts.Node | undefined;
  const starFrom: string[] = [];
  const names: string[] = [];
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st)) {
      const clause = st.exportClause;
      if (clause === undefined) starFrom.push(st.moduleSpecifier?.getText(sf) ?? '');
      else if (ts.isNamespaceExport(clause)) names.push(clause.name.text);
      else {
        for (const e of clause.elements) {
          names.push(e.name.text);
          if (e.name.text === 'init') indirect = st;
        }
      }
    } else if (ts.isExportAssignment(st)) {
      names.push('default');
    } else if (exported(st) && ts.isFunctionDeclaration(st)) {
      const name = st.modifiers?.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword) ? 'default' : st.name?.text;
      if (name !== undefined) names.push(name);
      if (name === 'init') [params, at] = [st.parameters, st];
    } else if (exported(st) && ts.isVariableStatement(st)) {
      const isConst = (st.declarationList.flags & ts.NodeFlags.Const) !== 0;
      for (const d of st.declarationList.declarations) {
        if (!ts.isIdentifier(d.name)) continue;
        names.push(d.name.text);
        if (d.name.text !== 'init') continue;
        const f = d.initializer;
        if (isConst && f !== undefined && (ts.isArrowFunction(f) || ts.isFunctionExpression(f))) [params, at] = [f.parameters, d];
        else indirect = st;
      }
    } else if (exported(st) && ts.isClassDeclaration(st) && st.name !== undefined) {
      names.push(st.name.text);
      if (st.name.text === 'init') indirect = st;
    }
  }
  const declareIt = 'declare it in index.ts itself, `export function init(sys, ...imports) { ... }` (it may call code in other files), where the build checks its parameters against domain.json';
  if (params === undefined && indirect !== undefined) {
    return [`${where(indirect)}: init is not declared here as a function (\`${indirect.getText(sf).split('\n', 1)[0]!.slice(0, 60)}\`): ${declareIt}`];
  }
  if (!names.includes('init')) {
    const stars = starFrom.length > 0 ? `; \`export * from ${starFrom.join(', ')}\` is not followed` : '';
    return [`${file}: exports no init (${names.length > 0 ? `it exports ${names.join(', ')}` : 'it exports nothing'}${stars}): a domain's index.ts exports function init(sys, ...imports), which the kernel calls to start it${starFrom.length > 0 ? `: ${declareIt}` : ''}`];
  }
  if (params === undefined || at === undefined || params.some((p) => p.dotDotDotToken)) return [];
  if (params.length <= 1 + imports.length) return [];
  const given = imports.length > 0 ? `sys and the ${imports.length} import(s) domain.json lists (${imports.join(', ')})` : 'only sys (domain.json lists no imports)';
  return [`${where(at)}: init declares ${params.length} parameters, but the kernel passes ${given}: the rest would be undefined; list the imports in domain.json, in init's order`];
}

/**
 * The loader evaluates a bundle in a SES Compartment, which refuses, by a regular expression over
 * the text and wherever it appears (a string, a regular expression, a method's name), what looks
 * like an HTML comment, an import expression or a direct eval (ses/src/transforms.js; the same
 * patterns here). Such a bundle was signed and then failed every load with SES's message naming a
 * line of the bundle: these are reported at build time instead, with the source file (the comment
 * esbuild puts before each file's code) and the line as bundled.
 */
const EVALUATOR_REFUSES: readonly { pattern: RegExp; what: string; fix: string }[] = [
  { pattern: /<!--|-->/, what: 'an HTML comment (<!-- or -->)', fix: "split it where esbuild keeps it split, in a template literal: `--${'>'}`" },
  { pattern: /(^|[^.]|\.\.\.)\bimport(\s*(?:\(|\/[/*]))/, what: 'an import expression (import followed by "(")', fix: "a domain loads no code at run time; in text, split it in a template literal: `import${'('}`" },
  { pattern: /(^|[^.])\beval(\s*\()/, what: 'a direct eval (eval followed by "(")', fix: 'a domain has no evaluator; rename a function or method called eval, or split such text in a template literal' },
];

function evaluatorRefusals(body: string, root: string): string[] {
  const out: string[] = [];
  for (const r of EVALUATOR_REFUSES) {
    for (const m of body.matchAll(new RegExp(r.pattern.source, 'g'))) {
      const before = body.slice(0, m.index + (m[1]?.length ?? 0)); // after the character before the word
      const file = [...before.matchAll(/^\/\/ (\S.*\.ts)$/gm)].at(-1)?.[1];
      const line = body.slice(before.lastIndexOf('\n') + 1).split('\n', 1)[0]!.trim();
      out.push(`${file === undefined ? '(bundle)' : relative(root, resolve(file))}: \`${line.slice(0, 80)}\` would be refused when loaded: the loader's evaluator (SES) rejects text that looks like ${r.what}, even in a string: ${r.fix}`);
    }
  }
  return out;
}

export function writeArtifact(a: Artifact, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, `${a.manifest.name}.rldom`);
  writeFileSync(path, JSON.stringify(a));
  return path;
}
