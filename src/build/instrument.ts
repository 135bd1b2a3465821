/**
 * Source instrumentation of domain code (trusted build), as a TypeScript transformer:
 *  - a deadline check at every function entry:
 *      `if (--$rl_n < 0) $rl_n = $rl_tick($rl_i);`
 *    a decrement of a bundle-local counter, with the kernel's clock read once per 1024 checks
 *    ($rl_i: the instance's token — the hooks are the same two functions for every instance of
 *    every domain, the token says whose deadline to check; bundle.ts says why);
 *    a constructor is an entry too (its check goes first, before any super()), and so is a
 *    class's first instance field initializer, `x = (--$rl_n < 0 && ($rl_n = $rl_tick($rl_i)), init)`:
 *    a base class runs its initializers before its constructor's body, and a class extending a
 *    built-in may have no constructor of its own, so recursion through `new` meets a check either way;
 *  - a batched deadline check at every loop back-edge of a function:
 *      `if ((++$rl_l & 1023) === 0) $rl_l = $rl_tick($rl_i, $rl_l = $rl_n = -1);`
 *    on a counter local to the function's activation (`let $rl_l = 0` first in its body), so the
 *    activation's loops together read the kernel's clock once per 1024 iterations (a loop at
 *    module level, in a constructor or in a class static block, where no such local can go first,
 *    has the entry check instead). Why batched: $rl_n lives in the bundle's closure, so each check
 *    on it is a load and a store in memory that a call in between keeps the compiler from holding
 *    in a register; the packet paths run about ten loop iterations a frame, and the checks on
 *    $rl_n cost 10-15% of maglev's and l2fwd's throughput (probes/ab-net.js, against a build
 *    without checks); a local counter stays in a register. The -1s are stored before the clock is
 *    read (as $rl_tick's ignored second argument, to keep the check small for the inliner): if $rl_tick
 *    throws (the domain is dead or past its deadline), they stay, so this activation's next
 *    back-edge and every function entry throw again; if it returns (1024: 0 modulo the batch),
 *    the next entry check reads the clock once more and refills $rl_n.
 *
 * What stays bounded: a domain stuck in a loop reaches the kernel within 1024 of its iterations,
 * stuck in recursion within 1024 calls, and panics past its deadline; once dead, its checks always
 * throw, so catching the panic does not help. (A loop of fewer than 1024 iterations in a function
 * called over and over does not read the clock itself: the calls' entry checks do.) Also:
 *  - every `await e` becomes `$rl_aw($rl_i, await e)`, so a continuation queued by a domain that has
 *    since died stops at its first step instead of reaching anything;
 *  - `import()` and `require(...)` are refused with file:line:col (a domain has no module loader),
 *    and so are syntax errors and top-level await (esbuild would name a line of this output),
 *    and so is any identifier beginning with `$rl_`: the checks' names are the build's, and a
 *    domain that declared its own `$rl_n` or `$rl_l` would shadow the counter and never check.
 */
import ts from 'typescript';

export class InstrumentError extends Error {}

/** Loop iterations of an activation between two reads of the kernel's clock (a power of two). */
const LOOP_BATCH = 1024;

/** A TypeScript diagnostic as `file:line:col: message` (the build's form of a problem). */
export function diagnosticText(d: ts.Diagnostic, fileName: string): string {
  const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
  return `${fileName}${at ? `:${at.line + 1}:${at.character + 1}` : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
}

export function instrument(source: string, fileName: string): string {
  const errors: string[] = [];
  const transformer: ts.TransformerFactory<ts.SourceFile> = (ctx) => {
    const f = ctx.factory;
    // The checks, built fresh for each insertion point (nodes must not be shared).
    const budgetSpent = (): ts.Expression => f.createBinaryExpression(f.createPrefixDecrement(f.createIdentifier('$rl_n')), ts.SyntaxKind.LessThanToken, f.createNumericLiteral(0));
    const instance = (): ts.Expression => f.createIdentifier('$rl_i');
    const tick = (): ts.Expression => f.createAssignment(f.createIdentifier('$rl_n'), f.createCallExpression(f.createIdentifier('$rl_tick'), undefined, [instance()]));
    const entryCheck = (): ts.Statement => f.createIfStatement(budgetSpent(), f.createExpressionStatement(tick()));
    /** The entry check as an expression, before `value`: `(--$rl_n < 0 && ($rl_n = $rl_tick($rl_i)), value)`. */
    const checkedValue = (value: ts.Expression): ts.Expression =>
      f.createParenthesizedExpression(f.createComma(f.createLogicalAnd(budgetSpent(), f.createParenthesizedExpression(tick())), value));
    const loopCheck = (): ts.Statement =>
      f.createIfStatement(
        f.createStrictEquality(
          f.createBitwiseAnd(f.createParenthesizedExpression(f.createPrefixIncrement(f.createIdentifier('$rl_l'))), f.createNumericLiteral(LOOP_BATCH - 1)),
          f.createNumericLiteral(0),
        ),
        f.createExpressionStatement(
          f.createAssignment(
            f.createIdentifier('$rl_l'),
            f.createCallExpression(f.createIdentifier('$rl_tick'), undefined, [
              instance(),
              f.createAssignment(f.createIdentifier('$rl_l'), f.createAssignment(f.createIdentifier('$rl_n'), f.createPrefixMinus(f.createNumericLiteral(1)))),
            ]),
          ),
        ),
      );
    const loopCounter = (): ts.Statement =>
      f.createVariableStatement(undefined, f.createVariableDeclarationList([f.createVariableDeclaration('$rl_l', undefined, undefined, f.createNumericLiteral(0))], ts.NodeFlags.Let));
    /**
     * For each function being visited (innermost last): whether a loop in it uses its local
     * counter; null for a constructor or class static block, whose loops count on $rl_n.
     */
    const activations: ({ counts: boolean } | null)[] = [];
    /** A loop body with its back-edge check first. */
    const checkedLoop = (body: ts.Statement): ts.Block => {
      const a = activations.at(-1);
      if (a) a.counts = true;
      const check = a ? loopCheck() : entryCheck();
      return ts.isBlock(body) ? f.updateBlock(body, [check, ...body.statements]) : f.createBlock([check, body], true);
    };
    /** A function body with its entry check first, then its loop counter if a loop uses it. */
    const checkedBody = (body: ts.Block, counts: boolean): ts.Block =>
      f.updateBlock(body, [entryCheck(), ...(counts ? [loopCounter()] : []), ...body.statements]);
    /**
     * A class's members with the entry check before its first instance field initializer. A
     * base class runs its field initializers before its constructor's body, and a class whose
     * constructor is not domain code (one extending a built-in, with none of its own) runs them
     * with no checked body at all: recursion through `new` in an initializer is checked here.
     */
    const checkedFields = (members: ts.NodeArray<ts.ClassElement>): ts.ClassElement[] => {
      const first = members.findIndex((m) => ts.isPropertyDeclaration(m) && m.initializer !== undefined && !ts.getModifiers(m)?.some((x) => x.kind === ts.SyntaxKind.StaticKeyword));
      return members.map((m, i) =>
        i === first && ts.isPropertyDeclaration(m) ? f.updatePropertyDeclaration(m, m.modifiers, m.name, m.questionToken ?? m.exclamationToken, m.type, checkedValue(m.initializer!)) : m,
      );
    };
    let sourceFile: ts.SourceFile;
    const where = (n: ts.Node): string => {
      const { line, character } = sourceFile.getLineAndCharacterOfPosition(n.getStart(sourceFile));
      return `${fileName}:${line + 1}:${character + 1}`;
    };
    const visit = (node: ts.Node): ts.Node => {
      // esbuild refuses these too, but at a line of this transform's output, not of the source.
      if (activations.length === 0 && (ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier !== undefined))) {
        errors.push(`${where(node)}: top-level await is not available to domain code (a domain's module body runs when it loads, synchronously): await inside init or a function`);
      }
      if (ts.isCallExpression(node)) {
        if (node.expression.kind === ts.SyntaxKind.ImportKeyword) errors.push(`${where(node)}: dynamic import() is not available to domain code`);
        if (ts.isIdentifier(node.expression) && node.expression.text === 'require') errors.push(`${where(node)}: require() is not available to domain code`);
      }
      if (ts.isIdentifier(node) && node.text.startsWith('$rl_')) {
        errors.push(`${where(node)}: the name ${node.text} is reserved for the trusted build's deadline checks`);
      }
      const fn = ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node) || ts.isArrowFunction(node) || ts.isMethodDeclaration(node) || ts.isAccessor(node);
      const own = ts.isConstructorDeclaration(node) || ts.isClassStaticBlockDeclaration(node);
      if (fn || own) activations.push(fn ? { counts: false } : null);
      const n = ts.visitEachChild(node, visit, ctx);
      const counts = fn || own ? activations.pop()?.counts === true : false;
      if (ts.isAwaitExpression(n)) {
        return f.createCallExpression(f.createIdentifier('$rl_aw'), undefined, [instance(), n]);
      }
      if (ts.isForStatement(n)) return f.updateForStatement(n, n.initializer, n.condition, n.incrementor, checkedLoop(n.statement));
      if (ts.isForOfStatement(n)) return f.updateForOfStatement(n, n.awaitModifier, n.initializer, n.expression, checkedLoop(n.statement));
      if (ts.isForInStatement(n)) return f.updateForInStatement(n, n.initializer, n.expression, checkedLoop(n.statement));
      if (ts.isWhileStatement(n)) return f.updateWhileStatement(n, n.expression, checkedLoop(n.statement));
      if (ts.isDoStatement(n)) return f.updateDoStatement(n, checkedLoop(n.statement), n.expression);
      if (ts.isFunctionDeclaration(n) && n.body) {
        return f.updateFunctionDeclaration(n, n.modifiers, n.asteriskToken, n.name, n.typeParameters, n.parameters, n.type, checkedBody(n.body, counts));
      }
      if (ts.isFunctionExpression(n)) {
        return f.updateFunctionExpression(n, n.modifiers, n.asteriskToken, n.name, n.typeParameters, n.parameters, n.type, checkedBody(n.body, counts));
      }
      if (ts.isArrowFunction(n)) {
        const body = ts.isBlock(n.body) ? checkedBody(n.body, counts) : f.createBlock([entryCheck(), f.createReturnStatement(n.body)], true);
        return f.updateArrowFunction(n, n.modifiers, n.typeParameters, n.parameters, n.type, n.equalsGreaterThanToken, body);
      }
      if (ts.isMethodDeclaration(n) && n.body) {
        return f.updateMethodDeclaration(n, n.modifiers, n.asteriskToken, n.name, n.questionToken, n.typeParameters, n.parameters, n.type, checkedBody(n.body, counts));
      }
      if (ts.isGetAccessorDeclaration(n) && n.body) {
        return f.updateGetAccessorDeclaration(n, n.modifiers, n.name, n.parameters, n.type, checkedBody(n.body, counts));
      }
      if (ts.isSetAccessorDeclaration(n) && n.body) {
        return f.updateSetAccessorDeclaration(n, n.modifiers, n.name, n.parameters, checkedBody(n.body, counts));
      }
      if (ts.isConstructorDeclaration(n) && n.body) {
        // The check goes first, even before super(): it touches no `this`.
        return f.updateConstructorDeclaration(n, n.modifiers, n.parameters, checkedBody(n.body, counts));
      }
      if (ts.isClassDeclaration(n)) return f.updateClassDeclaration(n, n.modifiers, n.name, n.typeParameters, n.heritageClauses, checkedFields(n.members));
      if (ts.isClassExpression(n)) return f.updateClassExpression(n, n.modifiers, n.name, n.typeParameters, n.heritageClauses, checkedFields(n.members));
      return n;
    };
    return (sf) => {
      sourceFile = sf;
      return ts.visitNode(sf, visit) as ts.SourceFile;
    };
  };
  const out = ts.transpileModule(source, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, sourceMap: false, verbatimModuleSyntax: false },
    transformers: { before: [transformer] },
  });
  // Syntax errors, with the source's file:line:col (esbuild would see this transform's output).
  errors.unshift(...(out.diagnostics ?? []).map((d) => diagnosticText(d, fileName)));
  if (errors.length > 0) throw new InstrumentError(errors.join('\n'));
  return out.outputText;
}
