/**
 * The IDL compiler (src/build/idl.ts) on inline sources: bad interface and layout types are
 * rejected with file:line:col, the interface/layout and method/field, and the offending type, and
 * so is what the generated code cannot mean (overloads, optional, rest or `this` parameters,
 * generics, inheritance between interfaces, a name declared twice, a method named then or as
 * Object.prototype's members);
 * good ones are accepted with the right model (async, borrow, nullable, interface references,
 * layouts); the fingerprint changes when an interface changes and not when only comments or
 * formatting change.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import ts from 'typescript';
import { compileSources, IdlError, type IdlModel } from '../../src/build/idl.js';
import { MAX_LAYOUT_BYTES } from '../../src/kernel/layout.js';

const PRELUDE = `import type { Borrow, Layout, RRef, RRefArray, RRefDeque, FixedArray, u8, u32, u64, bool } from '../runtime/types.js';\n`;

function compile(text: string, file = 'ifaces.ts'): IdlModel {
  return compileSources([ts.createSourceFile(file, PRELUDE + text, ts.ScriptTarget.ES2022, true)]);
}

function rejects(text: string, ...want: RegExp[]): string[] {
  try {
    compile(text, 'bad.ts');
  } catch (e) {
    assert.ok(e instanceof IdlError, String(e));
    for (const w of want) assert.ok(e.diagnostics.some((d) => w.test(d)), `no diagnostic matches ${w}:\n${e.diagnostics.join('\n')}`);
    return e.diagnostics;
  }
  assert.fail('the IDL compiler accepted a bad interface');
}

describe('rejections carry file:line:col, interface, method and the type', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['plain object parameter', `export interface A {\n  m(x: { a: number }): void;\n}`, /^bad\.ts:3:8: interface A, method m: parameter x: type '\{ a: number \}' is not exchangeable/],
    ['array parameter', `export interface A {\n  m(xs: number[]): void;\n}`, /^bad\.ts:3:9: interface A, method m: parameter xs: type 'number\[\]' is not exchangeable/],
    ['class instance', `export interface A {\n  m(): Date;\n}`, /^bad\.ts:3:8: interface A, method m: return type: type 'Date' is not exchangeable/],
    ['closure', `export interface A {\n  m(cb: () => void): void;\n}`, /^bad\.ts:3:9: interface A, method m: parameter cb: type '\(\) => void'/],
    ['general union', `export interface A {\n  m(x: string | number): void;\n}`, /^bad\.ts:3:8: .*method m: parameter x: union type 'string \| number' is not exchangeable/],
    ['Promise parameter', `export interface A {\n  m(p: Promise<number>): void;\n}`, /^bad\.ts:3:8: .*parameter p: Promise<\.\.\.> is only allowed as the whole return type/],
    ['Borrow result', `export interface A {\n  m(): Borrow<RRefArray<u8>>;\n}`, /^bad\.ts:3:8: .*method m: return type: Borrow<\.\.\.> is only allowed on parameters/],
    ['layout by value', `export interface L extends Layout { a: u32 }\nexport interface A {\n  m(l: L): void;\n}`, /^bad\.ts:4:8: .*parameter l: layout struct L cannot cross by value: pass RRef<L>/],
    ['RRef of a non-layout', `export interface A {\n  m(r: RRef<Date>): void;\n}`, /^bad\.ts:3:8: .*RRef<Date>: Date is not a layout struct/],
    ['void parameter', `export interface A {\n  m(v: void): void;\n}`, /^bad\.ts:3:8: .*'void' is only allowed as a return type/],
    ['untyped parameter', `export interface A {\n  m(v): void;\n}`, /^bad\.ts:3:5: interface A, method m: parameter v needs a type/],
    ['property in an interface', `export interface A {\n  x: number;\n}`, /^bad\.ts:3:3: interface A: only methods are allowed/],
    ['number field in a layout', `export interface L extends Layout {\n  a: number;\n}`, /^bad\.ts:3:6: layout L, field a: type 'number' has no fixed size/],
    // Only 'RRef... | null': the other member was not looked at, and this was taken for a nullable RRefArray.
    ['an RRef field in a union with a scalar', `export interface L extends Layout {\n  a: RRefArray<u8> | u32;\n}`, /^bad\.ts:3:6: layout L, field a: type 'RRefArray<u8> \| u32' is not a fixed-size layout field/],
    ['string field in a layout', `export interface L extends Layout {\n  s: string;\n}`, /^bad\.ts:3:6: layout L, field s: type 'string' is not a fixed-size layout field/],
    ['FixedArray of a non-scalar', `export interface L extends Layout {\n  a: FixedArray<string, 4>;\n}`, /^bad\.ts:3:6: layout L, field a: FixedArray element must be a scalar/],
    [
      'a lent struct holding RRefs',
      `export interface L extends Layout { n: u32; data: RRefArray<u8> | null }\nexport interface A {\n  m(l: Borrow<RRef<L>>): void;\n}`,
      /^bad\.ts:4:8: interface A, method m: parameter l: Borrow<RRef<L>>: L holds RRefs \(field data\), whose handles a borrower would keep past the call/,
    ],
    // What the optional-parameter diagnostic suggests ('T | null'), for a loan: refused saying why, not "only on parameters".
    ['an optional borrow', `export interface A {\n  m(b: Borrow<RRefArray<u8>> | null): void;\n}`, /^bad\.ts:3:8: interface A, method m: parameter b: 'Borrow<RRefArray<u8>> \| null': a borrow cannot be optional/],
    ['a this parameter', `export interface A {\n  m(this: A, x: number): void;\n}`, /^bad\.ts:3:5: interface A, method m: a 'this' parameter is not exchangeable: it declares no argument/],
    ['a method every object has', `export interface A {\n  constructor(): void;\n}`, /^bad\.ts:3:3: interface A, method constructor: every object has a constructor \(Object\.prototype's\)/],
    ['toString', `export interface A {\n  toString(): string;\n}`, /^bad\.ts:3:3: interface A, method toString: every object has a toString/],
    ['RRefArray of a non-scalar', `export interface A {\n  m(a: RRefArray<string>): void;\n}`, /RRefArray<string>: element must be a scalar/],
    // Each of these was accepted, and the generated code then did something else than declared.
    ['optional parameter', `export interface A {\n  m(x?: number): void;\n}`, /^bad\.ts:3:5: interface A, method m: parameter x: optional and rest parameters are not exchangeable: declare every parameter, 'T \| null'/],
    ['rest parameter', `export interface A {\n  m(...xs: number[]): void;\n}`, /^bad\.ts:3:5: interface A, method m: parameter xs: optional and rest parameters/],
    ['overloads', `export interface A {\n  m(x: number): void;\n  m(x: string): void;\n}`, /^bad\.ts:4:3: interface A, method m: declared twice \(overloads are not exchangeable\)/],
    ['optional method', `export interface A {\n  m?(): void;\n}`, /^bad\.ts:3:3: interface A, method m: optional methods are not exchangeable/],
    ['generic method', `export interface A {\n  m<T>(x: number): number;\n}`, /^bad\.ts:3:3: interface A, method m: generic methods are not exchangeable/],
    ['generic interface', `export interface A<T> {\n  m(x: number): number;\n}`, /^bad\.ts:2:18: interface A: generic interfaces are not exchangeable/],
    ['a method named then', `export interface A {\n  then(x: number): void;\n}`, /^bad\.ts:3:3: interface A, method then: 'then' would make the interface's proxies thenables/],
    ['a quoted method name', `export interface A {\n  'a-b'(): void;\n}`, /^bad\.ts:3:3: interface A: method name 'a-b' is not a plain identifier/],
    ['an interface extending another', `export interface A { m(): void }\nexport interface B extends A {\n  n(): void;\n}`, /^bad\.ts:3:18: interface B extends A: an interface may extend only Layout/],
    ['a layout extending another type too', `export interface L extends Layout, Other {\n  a: u32;\n}`, /^bad\.ts:2:18: layout L extends Other: an interface may extend only Layout/],
    ['optional layout field', `export interface L extends Layout {\n  a?: u32;\n}`, /^bad\.ts:3:3: layout L, field a: a layout field is always there \(no '\?'\)/],
    // Refused by every kernel when it registered the layouts, at start, after a build that passed.
    ['a layout field named as a handle member', `export interface L extends Layout {\n  length: u32;\n}`, /^bad\.ts:3:3: layout L, field length: the name of an RRef handle's own member \(length\), which the field's accessor would hide: rename the field/],
    ['a layout field named as an Object member', `export interface L extends Layout {\n  toString: u32;\n}`, /^bad\.ts:3:3: layout L, field toString: the name of an RRef handle's own member/],
    ['a name declared twice', `export interface A { m(): void }\nexport interface A extends Layout { a: u32 }`, /^bad\.ts:3:18: layout A: the name is declared already at bad\.ts:2:18: interfaces and layouts share one namespace/],
    // Compiled into a layout no exchange heap could allocate (at most 4 GiB), with sizes past u32.
    ['a FixedArray past the layout limit', `export interface L extends Layout {\n  a: FixedArray<u32, 1000000000000>;\n}`, /^bad\.ts:3:6: layout L, field a: FixedArray<u32, 1000000000000> is 4000000000000 bytes, more than a layout struct may hold \(65536 bytes\): keep bulk data in an RRefArray<u32> field/],
    ['a FixedArray one byte past the layout limit', `export interface L extends Layout {\n  a: FixedArray<u8, 65537>;\n}`, /^bad\.ts:3:6: layout L, field a: FixedArray<u8, 65537> is 65537 bytes, more than a layout struct may hold \(65536 bytes\)/],
    ['fields adding up past the layout limit', `export interface L extends Layout {\n  n: u8;\n  a: FixedArray<u32, 16384>;\n}`, /^bad\.ts:2:18: layout L: 65540 bytes, more than a layout struct may hold \(65536 bytes\)/],
  ];
  for (const [name, text, want] of cases) test(name, () => void rejects(text, want));

  test('a name declared in two files is refused, naming both', () => {
    const file = (name: string, text: string): ts.SourceFile => ts.createSourceFile(name, PRELUDE + text, ts.ScriptTarget.ES2022, true);
    assert.throws(
      () => compileSources([file('a.ts', 'export interface A { m(): void }'), file('b.ts', 'export interface A { n(): void }')]),
      (e: unknown) => e instanceof IdlError && /^b\.ts:2:18: interface A: the name is declared already at a\.ts:2:18/.test(e.diagnostics[0]!),
    );
  });

  test("a syntax error is reported as the parser's, alone, not as what the recovered model looked like", () => {
    // Missing the closing brace: the recovered model was accepted as it stood.
    assert.deepEqual(rejects(`export interface A { m(x: number): void; n(): void`), ["bad.ts:2:51: '}' expected."]);
    // A missing colon: rejected, but for "parameter number needs a type".
    assert.deepEqual(rejects(`export interface A { m(x number): void }`), ["bad.ts:2:26: ',' expected."]);
  });

  test('every problem in a file is reported, not just the first', () => {
    const d = rejects(`export interface A {\n  m(x: object): void;\n  n(): string[];\n}`, /bad\.ts:3:8/, /bad\.ts:4:8/);
    assert.equal(d.length, 2);
  });
});

describe('accepted interfaces', () => {
  const GOOD = `
export interface Req extends Layout { id: u32; lba: u64; ok: bool; mac: FixedArray<u8, 6>; data: RRefArray<u8> | null; q: RRefDeque<RRefArray<u8>> }
export interface Stat extends Layout { n: u32; size: f64 }
export interface Peer { ping(x: number): number }
export interface Svc {
  a(): void;
  b(x: number, s: string, big: bigint, f: boolean, u: undefined, n: null): number;
  c(buf: RRefArray<u8>): RRefArray<u8>;
  d(buf: Borrow<RRefArray<u8>>, r: Borrow<RRef<Stat>>, q: Borrow<RRefDeque<RRef<Req>>>): u32;
  e(r: RRef<Req> | null): Promise<RRef<Req> | null>;
  f(p: Peer): Peer;
  g(q: RRefDeque<RRef<Req>>): Promise<void>;
  h(x: u64): u8;
}`;

  test('every exchangeable type compiles to the right model', () => {
    const m = compile(GOOD);
    const svc = m.interfaces.find((i) => i.name === 'Svc')!;
    const byName = Object.fromEntries(svc.methods.map((x) => [x.name, x]));
    assert.deepEqual(byName.b!.params.map((p) => p.type), ['number', 'string', 'bigint', 'boolean', 'undefined', 'null'].map((name) => ({ k: 'prim', name })));
    assert.deepEqual(byName.c!.ret, { k: 'array', elem: 'u8' });
    assert.deepEqual(byName.d!.params[1]!.type, { k: 'borrow', inner: { k: 'rref', layout: 'Stat' } });
    assert.deepEqual(byName.d!.params[2]!.type, { k: 'borrow', inner: { k: 'deque', of: { k: 'rref', layout: 'Req' } } });
    assert.equal(byName.e!.async, true);
    assert.deepEqual(byName.e!.ret, { k: 'nullable', inner: { k: 'rref', layout: 'Req' } });
    assert.deepEqual(byName.f!.params[0]!.type, { k: 'iface', name: 'Peer' });
    assert.deepEqual(byName.h!.ret, { k: 'prim', name: 'number', scalar: 'u8' });
    assert.deepEqual(byName.h!.params[0]!.type, { k: 'prim', name: 'bigint', scalar: 'u64' });
    assert.deepEqual(byName.d!.ret, { k: 'prim', name: 'number', scalar: 'u32' });
    const req = m.layouts.find((l) => l.name === 'Req')!;
    assert.deepEqual(
      req.fields.map((f) => [f.name, f.kind, f.offset]),
      [['id', 'u32', 0], ['lba', 'u64', 8], ['ok', 'bool', 16], ['mac', 'array', 17], ['data', 'rref', 24], ['q', 'rref', 28]],
    );
    assert.equal(req.size, 32);
    assert.equal(m.fingerprint.length, 64);
  });

  test('parenthesized types mean what they hold (they were refused as not exchangeable)', () => {
    const plain = compile(GOOD);
    const parens = compile(GOOD.replace('data: RRefArray<u8> | null', 'data: (RRefArray<u8>) | (null)').replace('e(r: RRef<Req> | null): Promise<RRef<Req> | null>', 'e(r: (RRef<Req> | (null))): (Promise<(RRef<Req>) | null>)'));
    assert.deepEqual(parens, plain);
    rejects(`export interface A {\n  m(b: (Borrow<RRefArray<u8>>) | null): void;\n}`, /a borrow cannot be optional/);
  });

  test('a layout of exactly MAX_LAYOUT_BYTES compiles', () => {
    const m = compile(`export interface Big extends Layout { a: FixedArray<u8, 65532>; n: u32 }`);
    assert.equal(m.layouts[0]!.size, MAX_LAYOUT_BYTES);
    assert.deepEqual(m.layouts[0]!.fields.map((f) => f.offset), [0, 65532]);
  });

  test('the fingerprint ignores comments and formatting but not interface changes', () => {
    const base = compile(GOOD).fingerprint;
    const commented = compile(`// a comment\n/** doc */\n${GOOD.replace('a(): void;', 'a(): void; // trailing\n  /* block */')}`).fingerprint;
    assert.equal(commented, base, 'comments only');
    assert.equal(compile(GOOD.replace(/\n/g, '\n\n')).fingerprint, base, 'whitespace only');
    assert.equal(compile(GOOD, 'other-file.ts').fingerprint, base, 'file name only');
    assert.notEqual(compile(GOOD.replace('h(x: u64): u8;', 'h(x: u64): string;')).fingerprint, base, 'a result type');
    assert.notEqual(compile(GOOD.replace('a(): void;', 'a(): void;\n  z(): void;')).fingerprint, base, 'a new method');
    assert.notEqual(compile(GOOD.replace('b(x: number', 'b(y: number')).fingerprint, base, 'a parameter name');
    assert.notEqual(compile(GOOD.replace('id: u32;', 'id: u16;')).fingerprint, base, 'a layout field');
    assert.notEqual(compile(GOOD.replace('h(x: u64): u8;', 'h(x: u64): Promise<u8>;')).fingerprint, base, 'sync vs async');
    assert.notEqual(compile(GOOD.replace('d(buf: Borrow<RRefArray<u8>>', 'd(buf: RRefArray<u8>')).fingerprint, base, 'borrow vs move');
    // A deque's element type, of a parameter and of a layout field (each was left out of the model).
    assert.notEqual(compile(GOOD.replace('g(q: RRefDeque<RRef<Req>>)', 'g(q: RRefDeque<RRefArray<u8>>)')).fingerprint, base, 'a deque parameter\'s elements');
    assert.notEqual(compile(GOOD.replace('q: RRefDeque<RRefArray<u8>> }', 'q: RRefDeque<RRef<Stat>> }')).fingerprint, base, 'a deque field\'s elements');
  });

  test('the fingerprint tells scalar aliases apart, though they are all the same JS type', () => {
    const svc = (param: string, ret = 'number'): string => `export interface S { m(x: ${param}): ${ret} }`;
    const prints = ['number', 'u8', 'u16', 'u32', 'i32', 'f64'].map((t) => compile(svc(t)).fingerprint);
    assert.equal(new Set(prints).size, prints.length, 'u8, u16, u32, i32, f64 and number parameters give distinct fingerprints');
    assert.notEqual(compile(svc('number', 'u8')).fingerprint, compile(svc('number', 'u32')).fingerprint, 'a result u8 -> u32');
    assert.notEqual(compile(svc('u64')).fingerprint, compile(svc('i64')).fingerprint, 'u64 vs i64 (both bigint)');
    assert.equal(compile(svc('u8')).fingerprint, compile(svc('u8')).fingerprint, 'stable');
  });

  test('non-exported interfaces are not part of the IDL', () => {
    const m = compile(`interface Private { x: Date }\nexport interface A { m(): void }`);
    assert.deepEqual(m.interfaces.map((i) => i.name), ['A']);
  });
});
