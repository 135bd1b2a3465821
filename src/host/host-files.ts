/**
 * Host files the commands make or replace, whole or not at all, and host errors said in words.
 *
 * Invariant: replaceFile's `path` is either as it was or the complete new file — never empty,
 * never partial — whether `write` throws or a signal ends the process part-way (the temporary
 * file beside it is removed then too).
 */
import * as nfs from 'node:fs';

/**
 * Make `path` by `write(tmp)` into a temporary file beside it (same directory, so the rename is
 * atomic), then rename it into place. `write` makes the file (it does not exist yet: open it with
 * 'wx') and makes it durable if that matters to the caller.
 */
export async function replaceFile<T>(path: string, write: (tmp: string) => T | Promise<T>): Promise<T> {
  const tmp = `${path}.partial-${process.pid}`;
  // A signal ending the process mid-way (process.exit) skips the catch below: remove it then too.
  const removeTmp = (): void => nfs.rmSync(tmp, { force: true });
  process.once('exit', removeTmp);
  try {
    const r = await write(tmp);
    nfs.renameSync(tmp, path);
    return r;
  } catch (e) {
    removeTmp();
    throw e;
  } finally {
    process.off('exit', removeTmp);
  }
}

/** What host errors mean to a user, by code. */
const WORDS: Partial<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a path element is not a directory',
  ENOSPC: 'no space left on the host device',
  EROFS: 'read-only file system',
};

/** A host error (node:fs) in words: `words`' for its code, else the usual ones, else its message. */
export function hostReason(e: unknown, words: Partial<Record<string, string>> = {}): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code !== undefined ? words[code] ?? WORDS[code] : undefined) ?? (e as Error).message;
}
