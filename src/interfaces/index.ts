/**
 * The interface folder: the single source of truth for every cross-domain interface and layout
 * struct (ARCHITECTURE §2–3). The IDL compiler reads every file here; this index re-exports them
 * for domain code and the generated shadow skeletons.
 *
 * Rules a domain author follows: methods return errors as values (a negative errno, a status
 * code) — an exception escaping a domain is a panic; a buffer the callee only reads is
 * Borrow<...>; a buffer that is moved in must come back in the result.
 */
export * from './calls.js';
export * from './testing.js';
export * from './block.js';
export * from './net.js';
export * from './rv6.js';
