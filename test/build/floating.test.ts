/**
 * Domain code leaves no promise unawaited except through sys.detach (src/runtime/sys.ts). Once a
 * domain is dead, the kernel stops every continuation of it by a throw, which rejects the chain
 * the continuation is in; a chain nobody holds then becomes an unhandled rejection (harmless to
 * the kernel, which knows it for a dead domain's leftover, but a failed test under node:test, and
 * a real bug while the domain lives: its failure would go unnoticed). A statement whose value is a
 * promise — `p.then(f)`, `void asyncWork()`, `asyncWork();` — is such a chain; the type checker
 * finds them in every domain, program and runtime file. (Test domains are left out: some float a
 * rejection on purpose, see test/domains/escapee.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { ROOT } from '../kernel/helpers.js';

/** Statements of the matching files of `program` whose value is a promise nobody awaits, as `file:line: text`. */
function floatingPromises(program: ts.Program, include: (fileName: string) => boolean): string[] {
  const checker = program.getTypeChecker();
  const isPromise = (t: ts.Type): boolean =>
    t.isUnion() ? t.types.some(isPromise) : ['Promise', 'PromiseLike'].includes((t.getSymbol() ?? t.aliasSymbol)?.getName() ?? '');
  const found: string[] = [];
  for (const sf of program.getSourceFiles()) {
    if (sf.isDeclarationFile || !include(sf.fileName)) continue;
    const visit = (n: ts.Node): void => {
      if (ts.isExpressionStatement(n)) {
        const e = ts.isVoidExpression(n.expression) ? n.expression.expression : n.expression;
        const assigned = ts.isBinaryExpression(e) && e.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && e.operatorToken.kind <= ts.SyntaxKind.LastAssignment;
        if (!assigned && !ts.isAwaitExpression(e) && isPromise(checker.getTypeAtLocation(e))) {
          found.push(`${sf.fileName.slice(ROOT.length)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}: ${n.getText().split('\n')[0]}`);
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return found;
}

const tmp = mkdtempSync(join(tmpdir(), 'rl-floating-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('the check finds each way of leaving a promise unawaited, and nothing else', () => {
  const file = join(tmp, 'sample.ts');
  writeFileSync(file, [
    'declare function work(): Promise<number>;',
    'declare function detach(p: Promise<unknown>): void;',
    'let held: Promise<number> | null = null;',
    'export async function sample(): Promise<void> {',
    '  void work();', // 5: floats
    '  work().then(() => 1);', // 6: floats
    '  work();', // 7: floats
    '  await work();',
    '  detach(work().then(() => 1));',
    '  held = work();',
    '  held ??= work();',
    '  const kept = work();',
    '  await kept;',
    '}',
  ].join('\n'));
  const program = ts.createProgram([file], { strict: true, target: ts.ScriptTarget.ES2022, noEmit: true });
  const lines = floatingPromises(program, (f) => f === file).map((l) => Number(/:(\d+):/.exec(l)![1]));
  assert.deepEqual(lines, [5, 6, 7]);
});

test('domains, programs and the runtime float no promise (they hand such chains to sys.detach)', () => {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  })!;
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const domainCode = /\/src\/(domains|programs|runtime)\//;
  assert.ok(program.getSourceFiles().filter((f) => domainCode.test(f.fileName)).length > 50, 'the domain sources were found');
  assert.deepEqual(floatingPromises(program, (f) => domainCode.test(f)), []);
});
