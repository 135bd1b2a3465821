/**
 * Source instrumentation of domain code (trusted build), as a TypeScript transformer:
 *  - a deadline check at every function entry and loop back-edge:
 *      `if (--$rl_n < 0) $rl_n = $rl_tick();`
 *    a decrement of a bundle-local counter, with the kernel's clock read once per 1024 checks;
 *    a domain stuck in a loop reaches the kernel within 1024 iterations and panics past its
 *    deadline (and a dead domain's checks always throw, so catching the panic does not help);
 *  - every `await e` becomes `$rl_aw(await e)`, so a continuation queued by a domain that has
 *    since died stops at its first step instead of reaching anything;
 *  - `import()` and `require(...)` are refused with file:line:col (a domain has no module loader).
 */
import ts from 'typescript';

export class InstrumentError extends Error {}


export function instrument(source: string, fileName: string): string {
  const errors: string[] = [];
  // CHECK, built fresh for each insertion point (nodes must not be shared).
  const checkStmt = (f: ts.NodeFactory): ts.Statement =>
    f.createIfStatement(
      f.createBinaryExpression(f.createPrefixDecrement(f.createIdentifier('$rl_n')), ts.SyntaxKind.LessThanToken, f.createNumericLiteral(0)),
      f.createExpressionStatement(f.createAssignment(f.createIdentifier('$rl_n'), f.createCallExpression(f.createIdentifier('$rl_tick'), undefined, []))),
    );
  const transformer: ts.TransformerFactory<ts.SourceFile> = (ctx) => {
    const f = ctx.factory;
    const prependBlock = (body: ts.Statement): ts.Block =>
      ts.isBlock(body) ? f.updateBlock(body, [checkStmt(f), ...body.statements]) : f.createBlock([checkStmt(f), body], true);
    let sourceFile: ts.SourceFile;
    const where = (n: ts.Node): string => {
      const { line, character } = sourceFile.getLineAndCharacterOfPosition(n.getStart(sourceFile));
      return `${fileName}:${line + 1}:${character + 1}`;
    };
    const visit = (node: ts.Node): ts.Node => {
      if (ts.isCallExpression(node)) {
        if (node.expression.kind === ts.SyntaxKind.ImportKeyword) errors.push(`${where(node)}: dynamic import() is not available to domain code`);
        if (ts.isIdentifier(node.expression) && node.expression.text === 'require') errors.push(`${where(node)}: require() is not available to domain code`);
      }
      const n = ts.visitEachChild(node, visit, ctx);
      if (ts.isAwaitExpression(n)) {
        return f.createCallExpression(f.createIdentifier('$rl_aw'), undefined, [n]);
      }
      if (ts.isForStatement(n)) return f.updateForStatement(n, n.initializer, n.condition, n.incrementor, prependBlock(n.statement));
      if (ts.isForOfStatement(n)) return f.updateForOfStatement(n, n.awaitModifier, n.initializer, n.expression, prependBlock(n.statement));
      if (ts.isForInStatement(n)) return f.updateForInStatement(n, n.initializer, n.expression, prependBlock(n.statement));
      if (ts.isWhileStatement(n)) return f.updateWhileStatement(n, n.expression, prependBlock(n.statement));
      if (ts.isDoStatement(n)) return f.updateDoStatement(n, prependBlock(n.statement), n.expression);
      if (ts.isFunctionDeclaration(n) && n.body) {
        return f.updateFunctionDeclaration(n, n.modifiers, n.asteriskToken, n.name, n.typeParameters, n.parameters, n.type, prependBlock(n.body));
      }
      if (ts.isFunctionExpression(n)) {
        return f.updateFunctionExpression(n, n.modifiers, n.asteriskToken, n.name, n.typeParameters, n.parameters, n.type, prependBlock(n.body));
      }
      if (ts.isArrowFunction(n)) {
        const body = ts.isBlock(n.body) ? prependBlock(n.body) : f.createBlock([checkStmt(f), f.createReturnStatement(n.body)], true);
        return f.updateArrowFunction(n, n.modifiers, n.typeParameters, n.parameters, n.type, n.equalsGreaterThanToken, body);
      }
      if (ts.isMethodDeclaration(n) && n.body) {
        return f.updateMethodDeclaration(n, n.modifiers, n.asteriskToken, n.name, n.questionToken, n.typeParameters, n.parameters, n.type, prependBlock(n.body));
      }
      if (ts.isGetAccessorDeclaration(n) && n.body) {
        return f.updateGetAccessorDeclaration(n, n.modifiers, n.name, n.parameters, n.type, prependBlock(n.body));
      }
      if (ts.isSetAccessorDeclaration(n) && n.body) {
        return f.updateSetAccessorDeclaration(n, n.modifiers, n.name, n.parameters, prependBlock(n.body));
      }
      return n;
    };
    return (sf) => {
      sourceFile = sf;
      return ts.visitNode(sf, visit) as ts.SourceFile;
    };
  };
  const out = ts.transpileModule(source, {
    fileName,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, sourceMap: false, verbatimModuleSyntax: false },
    transformers: { before: [transformer] },
  });
  if (errors.length > 0) throw new InstrumentError(errors.join('\n'));
  return out.outputText;
}
