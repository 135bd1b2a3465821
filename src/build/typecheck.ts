/**
 * Type-checking of domain sources that the project's own type check does not see (trusted build).
 *
 * esbuild only strips types. The domains under src/ and test/ are type-checked by
 * `tsc -p tsconfig.json` (the first step of `npm run build`), but a domain folder outside the
 * tsconfig's `include` (a user's own domain, a test's temporary one) was bundled and signed with
 * whatever type errors it had. Such files are checked here, with the project's compiler options
 * (strict ...), and each error is a problem with file:line:col; files the tsconfig includes are
 * not checked a second time, so the normal build pays only a set lookup per file.
 */
import { join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { diagnosticText } from './instrument.js';

interface Project {
  /** The files `tsc -p tsconfig.json` type-checks (absolute paths). */
  covered: ReadonlySet<string>;
  options: ts.CompilerOptions;
  /**
   * Parsed source files outside the domain being checked (the TypeScript and Node libraries, the
   * interfaces and the runtime library), kept for the next domain: parsing them is most of a
   * check's cost (seconds for the first domain, a tenth of that for the next). A build process
   * does not see them change.
   */
  parsed: Map<string, ts.SourceFile | undefined>;
}

/** Per repository root, read once per process. */
const projects = new Map<string, Project | string>();

/** The root's tsconfig.json, read as tsc reads it, or why it cannot be. */
function project(root: string): Project | string {
  let p = projects.get(root);
  if (p !== undefined) return p;
  const path = join(root, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(path, ts.sys.readFile);
  const parsed = error === undefined ? ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, path) : undefined;
  const errors = error !== undefined ? [error] : parsed!.errors;
  if (errors.length > 0) {
    p = `${errors.map((d) => diagnosticText(d, relative(root, path))).join('; ')}: the build type-checks domains outside the project with its compiler options`;
  } else {
    // rootDir is where tsc's output tree starts; nothing is emitted here, and a domain outside the
    // root would be refused for lying outside it ("is not under 'rootDir'").
    const { rootDir: _rootDir, ...options } = parsed!.options;
    p = { covered: new Set(parsed!.fileNames.map((f) => resolve(f))), options: { ...options, noEmit: true }, parsed: new Map() };
  }
  projects.set(root, p);
  return p;
}

/** Those of `files` (absolute paths) that the root's tsconfig.json does not include: what `tsc -p tsconfig.json` leaves unchecked. */
export function uncheckedFiles(root: string, files: readonly string[]): string[] {
  const p = project(root);
  return typeof p === 'string' ? [...files] : files.filter((f) => !p.covered.has(f));
}

/**
 * The type errors in those of `files` (a domain's sources, absolute paths, all inside `domainDir`)
 * that the root's tsconfig.json does not include, as `file:line:col: message` with file relative
 * to `root`; none when it includes them all.
 */
export function typeProblems(root: string, domainDir: string, files: readonly string[]): string[] {
  const p = project(root);
  if (typeof p === 'string') return [p];
  const unchecked = uncheckedFiles(root, files);
  if (unchecked.length === 0) return [];
  const host = ts.createCompilerHost(p.options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, onError, fresh) => {
    // The domain's own files are read afresh: a domain folder may be built again after an edit.
    if (resolve(file).startsWith(domainDir + sep)) return read(file, lang, onError, fresh);
    if (!p.parsed.has(file)) p.parsed.set(file, read(file, lang, onError, fresh));
    return p.parsed.get(file);
  };
  const program = ts.createProgram(unchecked, p.options, host);
  const diags = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...unchecked.flatMap((f) => {
      const sf = program.getSourceFile(f);
      return sf === undefined ? [] : [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    }),
  ];
  return diags.map((d) => diagnosticText(d, d.file === undefined ? relative(root, join(root, 'tsconfig.json')) : relative(root, d.file.fileName)));
}
