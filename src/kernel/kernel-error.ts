/**
 * KernelError: failures of the kernel API itself (loading, verification, lifecycle,
 * configuration), each with a stable code and a message that says what to do.
 */
/** A kernel error with a clear code, for the kernel API (loading, lifecycle, configuration). */
export class KernelError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'KernelError';
  }
}
