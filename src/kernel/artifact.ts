/**
 * Domain artifacts: a JS bundle plus a signed manifest (trusted; shared by the build, which signs,
 * and the loader, which verifies).
 *
 * File format (`<name>.rldom`, JSON): { "manifest": Manifest, "code": string }.
 * The signature is ed25519 (node:crypto) over the canonical JSON of the manifest without its
 * `signature` field; the manifest carries the SHA-256 of the code, so the signature covers both.
 * Verification order, each with its own error: structure, signature present, key trusted,
 * signature valid, content hash, interface fingerprint.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KernelError } from './kernel-error.js';
import { distDir } from './paths.js';

export interface Manifest {
  name: string;
  version: string;
  /** Interface the domain's init returns (or null: exports nothing). */
  exports: string | null;
  /** Interfaces passed to init after sys, in order ('sys' not included). */
  imports: string[];
  /** Fingerprint of the interface definitions the domain was built against. */
  fingerprint: string;
  /** sha256 hex of `code`. */
  contentHash: string;
  /** Key id (sha256 of the public key's DER, first 16 hex digits). */
  keyId?: string;
  /** base64 ed25519 signature. */
  signature?: string;
}

export interface Artifact {
  manifest: Manifest;
  code: string;
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function canonical(m: Manifest): string {
  const { signature: _s, ...rest } = m;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

export function keyIdOf(pub: KeyObject): string {
  return sha256(pub.export({ type: 'spki', format: 'der' })).slice(0, 16);
}

export function signManifest(m: Manifest, priv: KeyObject): Manifest {
  const pub = createPublicKey(priv);
  const unsigned: Manifest = { ...m, keyId: keyIdOf(pub) };
  delete unsigned.signature;
  return { ...unsigned, signature: sign(null, Buffer.from(canonical(unsigned)), priv).toString('base64') };
}

/**
 * Directory of the development signing key: REDLEAF_KEY_DIR, default `.redleaf/keys` in the
 * installation's root (beside dist/), so the kernel trusts the build's key whatever the current
 * directory of the command is.
 */
export function keyDir(): string {
  return process.env.REDLEAF_KEY_DIR ?? join(distDir, '..', '.redleaf', 'keys');
}

/** The signing key: the configured one, or a development key generated on first use. */
export function loadOrCreateSigningKey(dir = keyDir()): KeyObject {
  const keyPath = join(dir, 'signing.key');
  if (!existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(dir, 'signing.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  }
  return createPrivateKey(readFileSync(keyPath));
}

/** The public keys the kernel trusts by default: the development key's. */
export function defaultTrustedKeys(dir = keyDir()): KeyObject[] {
  const pubPath = join(dir, 'signing.pub');
  if (!existsSync(pubPath)) return [];
  return [createPublicKey(readFileSync(pubPath))];
}

export function parseArtifact(text: string, source: string): Artifact {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new KernelError('EBADARTIFACT', `${source}: not a domain artifact (invalid JSON: ${(e as Error).message})`);
  }
  const a = raw as Partial<Artifact>;
  const m = a?.manifest as Partial<Manifest> | undefined;
  if (typeof a?.code !== 'string' || typeof m !== 'object' || m === null) {
    throw new KernelError('EBADARTIFACT', `${source}: not a domain artifact (needs "manifest" and "code")`);
  }
  for (const f of ['name', 'version', 'fingerprint', 'contentHash'] as const) {
    if (typeof m[f] !== 'string') throw new KernelError('EBADARTIFACT', `${source}: manifest field "${f}" is missing or not a string`);
  }
  if (!Array.isArray(m.imports) || !m.imports.every((x) => typeof x === 'string')) {
    throw new KernelError('EBADARTIFACT', `${source}: manifest field "imports" must be a list of interface names`);
  }
  if (m.exports !== null && typeof m.exports !== 'string') {
    throw new KernelError('EBADARTIFACT', `${source}: manifest field "exports" must be an interface name or null`);
  }
  return a as Artifact;
}

/** Verify an artifact; throws a KernelError naming the failed check. */
export function verifyArtifact(a: Artifact, trusted: readonly KeyObject[], fingerprint: string): void {
  const m = a.manifest;
  const who = `domain artifact "${m.name}"`;
  if (typeof m.signature !== 'string' || typeof m.keyId !== 'string') {
    throw new KernelError('EUNSIGNED', `${who} is not signed: build it with the trusted build (redleaf build)`);
  }
  const key = trusted.find((k) => keyIdOf(k) === m.keyId);
  if (key === undefined) {
    throw new KernelError('EUNTRUSTED', `${who} is signed by key ${m.keyId}, which this kernel does not trust`);
  }
  if (!verify(null, Buffer.from(canonical(m)), key, Buffer.from(m.signature, 'base64'))) {
    throw new KernelError('EBADSIG', `${who}: signature check failed: the manifest was modified after signing`);
  }
  // The hash is of the code's UTF-8, where a lone surrogate (which JSON can spell, "\ud800")
  // becomes U+FFFD: code with one would run other code than its hash covers. The build never
  // makes such code (a file of UTF-8 cannot hold one), so it is refused, not normalised.
  if (!a.code.isWellFormed()) {
    throw new KernelError('EHASH', `${who}: its code holds a lone UTF-16 surrogate, which its content hash cannot cover: the code was modified after signing`);
  }
  const actual = sha256(a.code);
  if (actual !== m.contentHash) {
    throw new KernelError('EHASH', `${who}: content hash mismatch (manifest ${m.contentHash.slice(0, 12)}…, code ${actual.slice(0, 12)}…): the code was modified after signing`);
  }
  if (m.fingerprint !== fingerprint) {
    throw new KernelError('EFINGERPRINT', `${who} was built against interfaces ${m.fingerprint.slice(0, 12)}…, but this kernel has ${fingerprint.slice(0, 12)}…: rebuild the domain`);
  }
}
