/** The user library for rv6 programs (see ulib.ts); programs import this module only. */
export { BUFSZ, STATUS_BROKEN_PIPE, Ulib, program, type ChildStatus, type CopyResult, type LineResult, type Stat } from './ulib.js';
export { getopt, joinArgv, splitArgv, type Options } from './args.js';
export { basename, joinPath, parseDirents, type Dirent } from './paths.js';
export { strerror } from './errno.js';
