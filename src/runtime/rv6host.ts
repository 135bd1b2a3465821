/**
 * Host capabilities the rv6 core domain is given at boot (`{ object }` imports, built by
 * src/host/rv6.ts). They are trusted kernel services, not IDL interfaces: the kernel wraps them so
 * that a dead core cannot call them, but their arguments and results are plain values.
 *
 * The core's manifest imports, in order: Rv6Fs (the fs domain), ProgramLoader, ConsoleOut.
 */
import type { Program, Rv6Fs } from '../interfaces/rv6.js';

/**
 * The kernel services of the rv6 core: loading user programs as domains, restarting its fs
 * domain — the core's only ways to create or end a domain — and the domain table.
 */
export interface ProgramLoader {
  /**
   * Verify (signature, content hash, interface fingerprint) and load the program artifact `text`
   * (an .rldom file's contents) as a new domain named `name`, and return a proxy of its Program
   * export for the core — or a string saying why it was refused (not an artifact, bad signature,
   * not a Program, init failed ...).
   */
  load(text: string, name: string): Promise<Program | string>;
  /** Terminate the domain `name` (a program the core loaded); its memory is reclaimed. */
  terminate(name: string): void;
  /** A table of every kernel domain (for the `domains` program). */
  domains(): string;
  /** Inject a fault into the kernel domain `name` at its next call (afterCalls 0) or after N; null or an error message. */
  crash(name: string, afterCalls: number): string | null;
  /**
   * Restart the core's fs domain, which died: once no block I/O of the dead instance is in
   * flight any more (so none can land after the new instance has mounted), a new instance from
   * the same artifact on the same block device, not yet mounted; or a string saying why not.
   */
  restartFs(): Promise<Rv6Fs | string>;
}

/** The console's output side: text goes to the host terminal. */
export interface ConsoleOut {
  write(text: string): void;
}
