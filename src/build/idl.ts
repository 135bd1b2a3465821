/**
 * The IDL front end (trusted build): reads the interface folder with the TypeScript compiler API
 * and produces the interface model every generated artifact is derived from.
 *
 * The interface folder is the single source of truth. In it:
 *  - `export interface X extends Layout { ... }` declares a layout struct: fields of scalar
 *    aliases (u8 ... f64, u64/i64 as bigint, bool), `FixedArray<scalar, N>`, or RRef fields
 *    (`RRef<L>`, `RRefArray<scalar>`, `RRefDeque<...>`, possibly `| null`), at most
 *    MAX_LAYOUT_BYTES (64 KiB) in all;
 *  - any other `export interface X { ... }` declares a cross-domain interface; each member must be
 *    a method whose parameter and return types are exchangeable: primitives, RRef / RRefArray /
 *    RRefDeque of layouts or scalars, `Borrow<...>` of those (parameters only; not of a layout
 *    with RRef fields, see lentRRefFields), references to
 *    other interfaces, `Promise<...>` of an exchangeable type (return only), `T | null`.
 * Anything else is rejected with file:line:col, the interface and method, and the offending type;
 * so is what the generated code (one object with a method per name, keyed by interface name)
 * cannot mean: overloads, optional or rest parameters, a `this` parameter, optional methods, type
 * parameters, an interface extending anything but Layout, a name declared twice, a method named
 * `then` or as a member of Object.prototype.
 *
 * Invariant: the model is canonical (sorted, no source positions), so the fingerprint over it
 * changes exactly when an interface or layout changes meaningfully — including a parameter or
 * result changing between scalar aliases (u8 -> u32), which share one JS type.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { HANDLE_MEMBERS, MAX_LAYOUT_BYTES, SCALAR_SIZE, type FieldSpec, type LayoutSpec, type ScalarKind } from '../kernel/layout.js';
import { diagnosticText } from './instrument.js';

export type Prim = 'number' | 'bigint' | 'boolean' | 'string' | 'null' | 'undefined' | 'void';

export type TypeRef =
  /** `scalar`: the alias a parameter or result was declared with (u8, u32, f64 ...), kept so that
   *  the fingerprint changes when it does, although all of them are the same JS type. */
  | { k: 'prim'; name: Prim; scalar?: ScalarKind }
  | { k: 'rref'; layout: string }
  | { k: 'array'; elem: ScalarKind }
  /** `of`: the element type declared (`RRefDeque<RRef<L>>`), absent for a bare `RRefDeque`. The
   *  proxies move a deque whole, not element by element, so `of` is for the fingerprint. */
  | { k: 'deque'; of?: TypeRef }
  | { k: 'iface'; name: string }
  | { k: 'borrow'; inner: TypeRef }
  | { k: 'nullable'; inner: TypeRef };

export interface MethodModel {
  name: string;
  params: { name: string; type: TypeRef }[];
  ret: TypeRef;
  async: boolean;
}

export interface InterfaceModel {
  name: string;
  file: string;
  methods: MethodModel[];
}

export interface IdlModel {
  interfaces: InterfaceModel[];
  layouts: LayoutSpec[];
  fingerprint: string;
}

export class IdlError extends Error {
  constructor(readonly diagnostics: string[]) {
    super(`interface definitions rejected:\n  ${diagnostics.join('\n  ')}`);
    this.name = 'IdlError';
  }
}

const SCALARS = new Set<string>(Object.keys(SCALAR_SIZE));
const PRIM_KEYWORDS: Partial<Record<ts.SyntaxKind, Prim>> = {
  [ts.SyntaxKind.NumberKeyword]: 'number',
  [ts.SyntaxKind.BigIntKeyword]: 'bigint',
  [ts.SyntaxKind.BooleanKeyword]: 'boolean',
  [ts.SyntaxKind.StringKeyword]: 'string',
  [ts.SyntaxKind.UndefinedKeyword]: 'undefined',
  [ts.SyntaxKind.VoidKeyword]: 'void',
};

/** Parse and check every `.ts` file of `dir` (the interface folder). */
export function compileIdl(dir: string, root = process.cwd()): IdlModel {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort();
  const sources = files.map((f) => {
    const path = join(dir, f);
    return ts.createSourceFile(relative(root, path), readFileSync(path, 'utf8'), ts.ScriptTarget.ES2022, true);
  });
  return compileSources(sources);
}

export function compileSources(sources: ts.SourceFile[]): IdlModel {
  // Syntax errors first, and alone: the parser recovers from them, and the model it recovers
  // could be accepted as it is ('m(x: number): void' missing its interface's closing brace) or
  // refused for a misleading reason ('m(x number)': "parameter number needs a type").
  const syntax = sources.flatMap((sf) => (ts.transpileModule(sf.text, { fileName: sf.fileName, reportDiagnostics: true }).diagnostics ?? []).map((d) => diagnosticText(d, sf.fileName)));
  if (syntax.length > 0) throw new IdlError(syntax);
  const diags: string[] = [];
  const layoutDecls = new Map<string, { decl: ts.InterfaceDeclaration; sf: ts.SourceFile }>();
  const ifaceDecls = new Map<string, { decl: ts.InterfaceDeclaration; sf: ts.SourceFile }>();
  const where = (sf: ts.SourceFile, n: ts.Node): string => {
    const { line, character } = sf.getLineAndCharacterOfPosition(n.getStart(sf));
    return `${sf.fileName}:${line + 1}:${character + 1}`;
  };
  for (const sf of sources) {
    for (const st of sf.statements) {
      if (!ts.isInterfaceDeclaration(st)) continue;
      const exported = st.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
      if (!exported) continue;
      const name = st.name.text;
      const bases = st.heritageClauses?.flatMap((h) => h.types.map((t) => t.expression.getText(sf))) ?? [];
      const isLayout = bases.includes('Layout');
      const kind = isLayout ? `layout ${name}` : `interface ${name}`;
      // Each of these was dropped without a word: the generated code keys interfaces and layouts by
      // name (a second declaration replaced the first), knows no inheritance (an extending
      // interface's proxy lacked the inherited methods) and no type parameters.
      const earlier = layoutDecls.get(name) ?? ifaceDecls.get(name);
      if (earlier !== undefined) {
        diags.push(`${where(sf, st.name)}: ${kind}: the name is declared already at ${where(earlier.sf, earlier.decl.name)}: interfaces and layouts share one namespace; rename one`);
        continue;
      }
      const other = bases.filter((b) => b !== 'Layout');
      if (other.length > 0) {
        diags.push(`${where(sf, st.name)}: ${kind} extends ${other.join(', ')}: an interface may extend only Layout (which makes it a layout struct): declare the methods or fields here`);
      }
      if (st.typeParameters !== undefined) diags.push(`${where(sf, st.name)}: ${kind}: generic interfaces are not exchangeable (no type parameters)`);
      (isLayout ? layoutDecls : ifaceDecls).set(name, { decl: st, sf });
    }
  }

  // Layouts: C-like layout, each field aligned to its size, struct size rounded to its alignment.
  const layouts: LayoutSpec[] = [];
  for (const [name, { decl, sf }] of [...layoutDecls].sort(([a], [b]) => a.localeCompare(b))) {
    const fields: FieldSpec[] = [];
    let offset = 0;
    let align = 1;
    for (const m of decl.members) {
      if (!ts.isPropertySignature(m) || !m.type || !ts.isIdentifier(m.name)) {
        diags.push(`${where(sf, m)}: layout ${name}: only plain fields are allowed in a layout struct`);
        continue;
      }
      if (m.questionToken) {
        diags.push(`${where(sf, m)}: layout ${name}, field ${m.name.text}: a layout field is always there (no '?'); an RRef field may be 'RRef<...> | null'`);
        continue;
      }
      if (HANDLE_MEMBERS.includes(m.name.text) || m.name.text in Object.prototype) {
        diags.push(`${where(sf, m.name)}: layout ${name}, field ${m.name.text}: the name of an RRef handle's own member (${m.name.text}), which the field's accessor would hide: rename the field`);
        continue;
      }
      const f = layoutField(m.name.text, m.type, sf, layoutDecls);
      if (typeof f === 'string') {
        diags.push(`${where(sf, m.type)}: layout ${name}, field ${m.name.text}: ${f}`);
        continue;
      }
      offset = Math.ceil(offset / f.align) * f.align;
      fields.push({ ...f.spec, offset });
      offset += f.size;
      align = Math.max(align, f.align);
    }
    const size = Math.max(align, Math.ceil(offset / align) * align);
    // Each field is at most MAX_LAYOUT_BYTES (layoutField), so the sum is exact; many of them can still add up past it.
    if (size > MAX_LAYOUT_BYTES) diags.push(`${where(sf, decl.name)}: layout ${name}: ${size} bytes, more than a layout struct may hold (${MAX_LAYOUT_BYTES} bytes): keep bulk data in an RRefArray field`);
    layouts.push({ name, size, align, fields });
  }

  const interfaces: InterfaceModel[] = [];
  for (const [name, { decl, sf }] of [...ifaceDecls].sort(([a], [b]) => a.localeCompare(b))) {
    const methods: MethodModel[] = [];
    for (const m of decl.members) {
      if (!ts.isMethodSignature(m) || !ts.isIdentifier(m.name)) {
        const what = ts.isMethodSignature(m) ? `method name ${m.name.getText(sf)} is not a plain identifier` : 'only methods are allowed in a cross-domain interface (no properties)';
        diags.push(`${where(sf, m)}: interface ${name}: ${what}`);
        continue;
      }
      const mname = m.name.text;
      const ctx = `interface ${name}, method ${mname}`;
      // A proxy is one object with a method per name: an overload would be a second method of
      // that name (the second signature checked calls made by the first), an optional one could
      // be missing from an export, and a `then` would make every proxy a thenable, called by
      // any await or promise resolution that meets it.
      if (methods.some((x) => x.name === mname)) diags.push(`${where(sf, m)}: ${ctx}: declared twice (overloads are not exchangeable): give each signature its own name`);
      if (m.questionToken) diags.push(`${where(sf, m)}: ${ctx}: optional methods are not exchangeable: every method of an interface is implemented`);
      // Every object has these, so an export lacking the method passed the loader's check (and
      // a call reached Object.prototype's: `constructor()` returned an object, a void result's fault).
      if (mname in Object.prototype) diags.push(`${where(sf, m)}: ${ctx}: every object has a ${mname} (Object.prototype's), so an export without the method would be taken to implement it: choose another name`);
      if (mname === 'then') diags.push(`${where(sf, m)}: ${ctx}: 'then' would make the interface's proxies thenables, which await calls: choose another name`);
      if (m.typeParameters !== undefined) diags.push(`${where(sf, m)}: ${ctx}: generic methods are not exchangeable (no type parameters): declare one method per type`);
      const params: MethodModel['params'] = [];
      for (const p of m.parameters) {
        const pname = p.name.getText(sf);
        if (pname === 'this') {
          // TypeScript's `this` parameter types `this`, and callers pass no argument for it; the
          // proxy took it for the first argument, checking each argument against the wrong type.
          diags.push(`${where(sf, p)}: ${ctx}: a 'this' parameter is not exchangeable: it declares no argument, and a proxy's method passes its arguments only: remove it`);
          continue;
        }
        if (p.questionToken || p.initializer || p.dotDotDotToken) {
          // The proxy checks every declared parameter: an omitted one fails its check at run time.
          diags.push(`${where(sf, p)}: ${ctx}: parameter ${pname}: optional and rest parameters are not exchangeable: declare every parameter, 'T | null' for one a caller may leave out (it passes null)`);
          continue;
        }
        if (!p.type) {
          diags.push(`${where(sf, p)}: ${ctx}: parameter ${pname} needs a type`);
          continue;
        }
        const t = typeRef(p.type, sf, layoutDecls, ifaceDecls, 'param');
        const bad = typeof t === 'string' ? t : lentRRefFields(t, layouts);
        if (bad !== null) diags.push(`${where(sf, p.type)}: ${ctx}: parameter ${pname}: ${bad}`);
        else params.push({ name: pname, type: t as TypeRef });
      }
      let ret: TypeRef = { k: 'prim', name: 'void' };
      let isAsync = false;
      if (!m.type) {
        diags.push(`${where(sf, m)}: ${ctx}: needs a return type`);
      } else {
        let rt = bare(m.type); // `(Promise<T>)` is the whole return type too
        if (ts.isTypeReferenceNode(rt) && rt.typeName.getText(sf) === 'Promise' && rt.typeArguments?.length === 1) {
          isAsync = true;
          rt = rt.typeArguments[0]!;
        }
        const t = typeRef(rt, sf, layoutDecls, ifaceDecls, 'return');
        if (typeof t === 'string') diags.push(`${where(sf, rt)}: ${ctx}: return type: ${t}`);
        else ret = t;
      }
      methods.push({ name: mname, params, ret, async: isAsync });
    }
    interfaces.push({ name, file: sf.fileName, methods });
  }
  if (diags.length > 0) throw new IdlError(diags);
  const canonical = JSON.stringify({ interfaces: interfaces.map(({ file: _f, ...i }) => i), layouts });
  const fingerprint = createHash('sha256').update(canonical).digest('hex');
  return { interfaces, layouts, fingerprint };
}

type Decls = Map<string, { decl: ts.InterfaceDeclaration; sf: ts.SourceFile }>;

/**
 * Why parameter type `t` may not be lent, or null: a Borrow<RRef<L>> of a layout L with RRef
 * fields. A borrow is one read-only handle to the struct, revoked when the call returns, but a
 * field read through it mints a handle to the child, which nothing revokes: the borrower could
 * keep reading the lender's buffers after the call, and the lender's own handles to them stay
 * writable during it. Such a value is moved (and moved back); its buffers can be lent one by one.
 */
function lentRRefFields(t: TypeRef, layouts: readonly LayoutSpec[]): string | null {
  if (t.k !== 'borrow' || t.inner.k !== 'rref') return null;
  const name = t.inner.layout;
  const field = layouts.find((l) => l.name === name)?.fields.find((f) => f.kind === 'rref');
  if (field === undefined) return null;
  return `Borrow<RRef<${name}>>: ${name} holds RRefs (field ${field.name}), whose handles a borrower would keep past the call: move it instead, or lend its buffers`;
}

function layoutField(
  name: string,
  node: ts.TypeNode,
  sf: ts.SourceFile,
  layouts: Decls,
): { spec: Omit<FieldSpec, 'offset'>; size: number; align: number } | string {
  const t = bare(node);
  if (ts.isTypeReferenceNode(t)) {
    const n = t.typeName.getText(sf);
    if (SCALARS.has(n) && !t.typeArguments) {
      const size = SCALAR_SIZE[n as ScalarKind];
      return { spec: { name, kind: n as ScalarKind }, size, align: size };
    }
    if (n === 'FixedArray' && t.typeArguments?.length === 2) {
      const [e, c] = t.typeArguments;
      const en = e!.getText(sf);
      const count = ts.isLiteralTypeNode(c!) && ts.isNumericLiteral(c.literal) ? Number(c.literal.text) : NaN;
      if (!SCALARS.has(en)) return `FixedArray element must be a scalar (u8 ... f64), got ${en}`;
      if (!(count > 0 && Number.isInteger(count))) return `FixedArray length must be a positive integer literal`;
      const size = SCALAR_SIZE[en as ScalarKind];
      // Checked before the layout adds it up: a count like 1e300 would make sizes that are not exact integers.
      if (count * size > MAX_LAYOUT_BYTES) return `FixedArray<${en}, ${c!.getText(sf)}> is ${count * size} bytes, more than a layout struct may hold (${MAX_LAYOUT_BYTES} bytes): keep bulk data in an RRefArray<${en}> field`;
      return { spec: { name, kind: 'array', elem: en as ScalarKind, count }, size: size * count, align: size };
    }
    if (['RRef', 'RRefArray', 'RRefDeque'].includes(n)) return rrefField(name, t, sf, layouts);
    if (layouts.has(n)) return `nested layout ${n} is not supported yet: hold it through RRef<${n}>`;
  }
  if (ts.isUnionTypeNode(t) && t.types.length === 2) {
    const others = t.types.filter((x) => !isNull(x));
    const nonNull = others.length === 1 ? bare(others[0]!) : null;
    if (nonNull && ts.isTypeReferenceNode(nonNull) && ['RRef', 'RRefArray', 'RRefDeque'].includes(nonNull.typeName.getText(sf))) {
      return rrefField(name, nonNull, sf, layouts);
    }
  }
  if (t.kind === ts.SyntaxKind.NumberKeyword) return `type 'number' has no fixed size in a layout: use u8, u16, u32, i32, f64 ...`;
  if (t.kind === ts.SyntaxKind.BooleanKeyword) return `use 'bool' for a boolean layout field`;
  return `type '${t.getText(sf)}' is not a fixed-size layout field`;
}

/**
 * A layout field holding an RRef, with the type key of what it may hold (FieldSpec.holds): the
 * type checked as a call's parameter type would be (typeRef).
 */
function rrefField(name: string, t: ts.TypeReferenceNode, sf: ts.SourceFile, layouts: Decls): { spec: Omit<FieldSpec, 'offset'>; size: number; align: number } | string {
  const r = typeRef(t, sf, layouts, new Map(), 'inner');
  if (typeof r === 'string') return r;
  const key = (x: TypeRef): string | null => (x.k === 'deque' ? 'deque' : x.k === 'array' ? `array:${x.elem}` : x.k === 'rref' ? `struct:${x.layout}` : null);
  const holds = key(r);
  if (holds === null) return `type '${t.getText(sf)}' is not an RRef, RRefArray or RRefDeque`;
  const of = r.k === 'deque' && r.of !== undefined ? key(r.of) : null;
  return { spec: { name, kind: 'rref', holds, ...(of !== null ? { dequeOf: of } : {}) }, size: 4, align: 4 };
}

/** `t` without the parentheses around it: `(RRef<L> | null)` is `RRef<L> | null` (it was refused as not exchangeable). */
function bare(t: ts.TypeNode): ts.TypeNode {
  return ts.isParenthesizedTypeNode(t) ? bare(t.type) : t;
}

/** `t` is `null`, parenthesized or not. */
function isNull(t: ts.TypeNode): boolean {
  const b = bare(t);
  return ts.isLiteralTypeNode(b) && b.literal.kind === ts.SyntaxKind.NullKeyword;
}

function typeRef(node: ts.TypeNode, sf: ts.SourceFile, layouts: Decls, ifaces: Decls, pos: 'param' | 'return' | 'inner'): TypeRef | string {
  const t = bare(node);
  const kw = PRIM_KEYWORDS[t.kind];
  if (kw) {
    if (kw === 'void' && pos !== 'return') return `'void' is only allowed as a return type`;
    return { k: 'prim', name: kw };
  }
  if (isNull(t)) return { k: 'prim', name: 'null' };
  if (ts.isUnionTypeNode(t)) {
    const nonNull = t.types.filter((x) => !isNull(x));
    if (nonNull.length === 1 && t.types.length === 2) {
      // Decision: a loan is never optional. The proxies end a loan by its parameter's declared
      // kind (a plain Borrow), so a nullable one would be lent and never given back; and checked
      // as an inner type it was refused as "only allowed on parameters", on a parameter.
      const b = bare(nonNull[0]!);
      if (pos === 'param' && ts.isTypeReferenceNode(b) && b.typeName.getText(sf) === 'Borrow') {
        return `'${t.getText(sf)}': a borrow cannot be optional (no 'Borrow<...> | null'): lend one on every call, or declare a second method without the parameter`;
      }
      const inner = typeRef(b, sf, layouts, ifaces, pos === 'return' ? 'return' : 'inner');
      if (typeof inner === 'string') return inner;
      return { k: 'nullable', inner };
    }
    return `union type '${t.getText(sf)}' is not exchangeable (only 'T | null')`;
  }
  if (ts.isTypeReferenceNode(t)) {
    const n = t.typeName.getText(sf);
    const args = t.typeArguments ?? [];
    if (SCALARS.has(n) && args.length === 0) {
      const scalar = n as ScalarKind;
      return { k: 'prim', name: scalar === 'u64' || scalar === 'i64' ? 'bigint' : scalar === 'bool' ? 'boolean' : 'number', scalar };
    }
    if (n === 'RRef' && args.length === 1) {
      const l = args[0]!.getText(sf);
      if (!layouts.has(l)) return `RRef<${l}>: ${l} is not a layout struct declared in the interface folder (extends Layout)`;
      return { k: 'rref', layout: l };
    }
    if (n === 'RRefArray' && args.length <= 1) {
      const e = args.length === 0 ? 'u8' : args[0]!.getText(sf);
      if (!SCALARS.has(e)) return `RRefArray<${e}>: element must be a scalar (u8 ... f64)`;
      return { k: 'array', elem: e as ScalarKind };
    }
    if (n === 'RRefDeque') {
      if (args.length === 1) {
        const inner = typeRef(args[0]!, sf, layouts, ifaces, 'inner');
        if (typeof inner === 'string') return inner;
        if (inner.k !== 'rref' && inner.k !== 'array') return `RRefDeque elements must be RRef or RRefArray handles`;
        // Kept in the model: without it the fingerprint did not change with the element type, and
        // a domain built for a deque of one type loaded against an interface with another.
        return { k: 'deque', of: inner };
      }
      return { k: 'deque' };
    }
    if (n === 'Borrow' && args.length === 1) {
      if (pos !== 'param') return `Borrow<...> is only allowed on parameters`;
      const inner = typeRef(args[0]!, sf, layouts, ifaces, 'inner');
      if (typeof inner === 'string') return inner;
      if (inner.k !== 'rref' && inner.k !== 'array' && inner.k !== 'deque') return `only RRef, RRefArray and RRefDeque can be borrowed`;
      return { k: 'borrow', inner };
    }
    if (n === 'Promise') return `Promise<...> is only allowed as the whole return type`;
    if (ifaces.has(n) && args.length === 0) return { k: 'iface', name: n };
    if (layouts.has(n)) return `layout struct ${n} cannot cross by value: pass RRef<${n}>`;
  }
  return `type '${t.getText(sf)}' is not exchangeable (primitives, RRef/RRefArray/RRefDeque, Borrow<...>, interface references)`;
}
