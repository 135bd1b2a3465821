/**
 * sh: the rv6 shell.
 *
 *   sh                 commands from stdin; interactive (prompt `$ `, job control) when stdin is
 *                      the console
 *   sh FILE            run the script FILE
 *   sh -c 'COMMANDS'   run COMMANDS
 *
 * Input is read line by line and run as soon as it parses (an open quote or a trailing `|`,
 * `&&`, `||` or `\` asks for more: prompt `> `). The shell ends at end of input or `exit`, with
 * `$?`. A syntax error sets `$?` to 2; it ends a script but not an interactive session. See
 * parse.ts for the language and exec.ts for how commands run.
 */
import { O_RDONLY } from '../../interfaces/rv6.js';
import type { Program } from '../../interfaces/rv6.js';
import { program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';
import { parse } from './parse.js';
import { Shell } from './exec.js';

const STATUS_SYNTAX = 2;
/** A script that opens but cannot be read (a directory), as sh: found, but not runnable. */
const STATUS_UNREADABLE = 126;
/** How a program's artifact file begins (the JSON the build writes: its manifest first). */
const ARTIFACT_START = '{"manifest":';

export function init(sys: Sys): Program {
  return program(sys, 'sh', async (u) => {
    const args = u.args.slice(1);
    if (args[0] === '-c') {
      if (args.length < 2) return u.usage("sh -c 'COMMANDS'");
      return runString(u, args[1]!);
    }
    if (args.length > 0) {
      const fd = await u.rv6.open(args[0]!, O_RDONLY);
      if (fd < 0) return u.fail(args[0]!, fd, 127);
      const status = await runLines(u, fd, args[0]!, false);
      await u.close(fd);
      return status;
    }
    const interactive = await u.isConsole(0);
    return runLines(u, 0, null, interactive);
  });
}

async function runString(u: Ulib, text: string): Promise<number> {
  const shell = new Shell(u, null);
  const parsed = parse(text);
  if (!parsed.ok) {
    await u.error(`-c: ${parsed.message}`);
    return STATUS_SYNTAX;
  }
  await shell.run(parsed.items);
  return shell.exitStatus ?? shell.main.status;
}

/**
 * The console group of an interactive shell while it waits at its prompt: none (0) when the
 * console allows it (the rv6 core does: Ctrl-C then ends no process), else the shell's own group
 * (it was started as a group leader); null when the console takes neither (no job control).
 */
function idleGroup(u: Ulib): number | null {
  if (u.rv6.tcsetpgrp(0) === 0) return 0;
  const own = u.rv6.getpid();
  return u.rv6.tcsetpgrp(own) === 0 ? own : null;
}

/**
 * Read commands from `fd` line by line. `script` names a script file (for error messages). A
 * script (the shell's own fd) is read in blocks, and so is the console (a read returns one line
 * at most); any other stdin (a pipe, a file) byte by byte, so that the commands run from it find
 * the rest of it unread.
 */
async function runLines(u: Ulib, fd: number, script: string | null, interactive: boolean): Promise<number> {
  const shell = new Shell(u, interactive ? idleGroup(u) : null);
  const chunk = script === null && !interactive ? 1 : undefined;
  let text = '';
  /** Why `text` does not parse yet (it needs more lines). */
  let incomplete = '';
  let lineNo = 0;
  while (shell.exitStatus === null) {
    if (interactive) await u.print(text === '' ? '$ ' : '> ');
    const line = await u.readLine(fd, chunk);
    if (typeof line === 'number') return script === null ? u.fail('read', line) : u.fail(script, line, STATUS_UNREADABLE);
    if (line === null) {
      if (text !== '') await syntaxError(u, shell, script, lineNo, incomplete);
      if (interactive) await u.print('\n');
      break;
    }
    // A program's artifact (JSON, the loader's format), as sh refuses a binary: not a script.
    if (script !== null && lineNo === 0 && line.startsWith(ARTIFACT_START)) {
      await u.error(`${script}: is a program, not a shell script (run it as a command: ${script})`);
      return STATUS_UNREADABLE;
    }
    lineNo++;
    text += line + '\n';
    const parsed = parse(text);
    if (!parsed.ok && parsed.incomplete) {
      incomplete = parsed.message;
      continue;
    }
    text = '';
    if (!parsed.ok) {
      await syntaxError(u, shell, script, lineNo, parsed.message);
      if (!interactive) return STATUS_SYNTAX;
      continue;
    }
    await shell.run(parsed.items);
  }
  return shell.exitStatus ?? shell.main.status;
}

async function syntaxError(u: Ulib, shell: Shell, script: string | null, lineNo: number, message: string): Promise<void> {
  await u.error(script === null ? message : `${script}: line ${lineNo}: ${message}`);
  shell.main.status = STATUS_SYNTAX;
}
