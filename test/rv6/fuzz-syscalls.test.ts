/**
 * System calls with random, mostly bad, arguments (a property): descriptors out of range, not
 * integers or closed; sizes negative, fractional or huge; unknown flags; paths empty, huge, with
 * NUL bytes or through files. (No pipes: a read of an empty pipe whose write end is open waits, as
 * it should; pipes have their own tests.) Every call must answer (no call throws into the program, none
 * hangs, the core never dies), every number it answers is 0, a count or descriptor, or a -errno
 * the interface defines; and afterwards the image is fsck-clean, with nothing leaked (every file
 * the calls opened is closed when the program ends). A value of the wrong type altogether is not
 * an errno: the crossing refuses it as the caller's fault (ARCHITECTURE §4), and the program
 * panics; the last test checks that this ends only the program.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEV_CONSOLE, ERRNO, O_APPEND, O_CREATE, O_EXCL, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/interfaces/rv6.js';
import { assertClean, fcParams } from '../fs/helpers.js';
import { withImageFile, withRv6, type Cmd } from './helpers.js';

const ERRNOS = new Set(Object.values(ERRNO).map((e) => -e));

// (Numbers only as JSON carries them to the probe: no NaN or Infinity, which arrive as null.)
// Descriptor 1 is the probe's output, the one way to the console (the script closes 0 and 2, and
// no path names a console device): a call on it could close it or garble the result lines.
const fd = fc.oneof(fc.constantFrom(-1, 0, 2, 3, 4, 5, 63, 64, 1e9, 1.5, 2 ** 53, -(2 ** 31)), fc.integer({ min: -5, max: 70 })).map((f) => (f === 1 ? 0 : f));
const size = fc.oneof(fc.constantFrom(-1, 0, 1, 7, 4096, 1.5, 1e12), fc.nat(5000));
const flags = fc.oneof(
  fc.constantFrom(0, O_WRONLY, O_RDWR, O_CREATE | O_RDWR, O_CREATE | O_EXCL | O_WRONLY, O_TRUNC | O_WRONLY, O_APPEND | O_WRONLY, O_WRONLY | O_RDWR, -1, 0x7fffffff, 1.5),
  fc.integer(),
);
/** A string argument of up to `n` characters: the probe reads "$name" and "$name.field" as variables. */
const literal = (n: number): fc.Arbitrary<string> => fc.string({ maxLength: n }).filter((s) => !s.startsWith('$'));
const path = fc.oneof(
  fc.constantFrom('', '/', '.', '..', '/f', 'f', '/d', '/d/f', '/d/e', '/f/x', '/dev', '/dev/x', '/bin/rv6_probe', 'a\0b', '/'.repeat(5000), 'n'.repeat(40), `/${'d/'.repeat(600)}`),
  literal(20),
);

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.tuple(fc.constant('open'), path, flags),
  fc.tuple(fc.constant('close'), fd),
  fc.tuple(fc.constant('read'), fd, size, fc.constantFrom(-1, 0, 16, 4096)), // the buffer's size (-1: none)
  // (Data starting with '$' was read as a variable, and "$." crashed the probe: seed 507872613.)
  fc.tuple(fc.constant('write'), fd, literal(30), size),
  fc.tuple(fc.constant('lseek'), fd, fc.oneof(size, fc.integer()), fc.integer({ min: -1, max: 3 })),
  fc.tuple(fc.constant('fstat'), fd),
  fc.tuple(fc.constant('stat'), path),
  fc.tuple(fc.constant('dup'), fd),
  fc.tuple(fc.constant('getdents'), fd),
  fc.tuple(fc.constant('link'), path, path),
  fc.tuple(fc.constant('unlink'), path),
  fc.tuple(fc.constant('rename'), path, path),
  fc.tuple(fc.constant('mkdir'), path),
  fc.tuple(fc.constant('rmdir'), path),
  fc.tuple(fc.constant('mknod'), path, fc.oneof(size, fc.integer()).filter((m) => m !== DEV_CONSOLE), fc.oneof(size, fc.integer())),
  fc.tuple(fc.constant('chdir'), path),
  fc.tuple(fc.constant('getcwd')),
);

/** Whether `r` is a well-formed answer: a non-negative count or id, or a known -errno, or an object of such. */
function wellFormed(r: unknown): boolean {
  if (typeof r === 'number') return Number.isInteger(r) && (r >= 0 || ERRNOS.has(r));
  if (typeof r === 'string') return true; // getcwd
  if (Array.isArray(r)) return true;
  if (r !== null && typeof r === 'object') {
    const o = r as Record<string, unknown>;
    for (const k of ['n', 'err']) if (k in o && !wellFormed(o[k])) return false;
    return true;
  }
  return false;
}

test('property: system calls with random, mostly bad, arguments all answer well-formed results; nothing dies or leaks; the image stays clean', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 5, maxLength: 40 }), (cmds) => withImageFile(async (file) => {
        const setup: Cmd[] = [['close', 0], ['close', 2], ['mkdir', '/d'], ['f=open', '/f', O_CREATE | O_RDWR], ['write', '$f', 'hello'], ['open', '/d/e', O_CREATE | O_WRONLY]];
        const script = [...setup, ...cmds.map((c, i) => [`c${i}=${c[0] as string}`, ...c.slice(1)])];
        await withRv6(async (t) => {
          const status = await t.runInit([...script, ['done=getpid']]);
          assert.equal(status, 0, `the program ended with status ${status}, not 0: a call threw into it\n${t.logs.join('\n')}`);
          for (let i = 0; i < cmds.length; i++) {
            const line = t.lines().find((l) => l.op === `c${i}`);
            assert.ok(line !== undefined, `call ${i} ${JSON.stringify(cmds[i])} never answered`);
            assert.ok(wellFormed(line.r), `call ${i} ${JSON.stringify(cmds[i])} answered ${JSON.stringify(line.r)}`);
          }
          assert.ok(t.lines().some((l) => l.op === 'done'));
        }, { file });
        assertClean(file, false, 'after the calls (every file closed when the program ended)');
      })),
    fcParams(40),
  );
});

test('a system call with an argument of the wrong type panics the program (the fault is the caller\'s), and only the program', async () => {
  await withImageFile(async (file) => {
    await withRv6(async (t) => {
      const status = await t.runInit([['mkdir', '/d'], ['open', { not: 'a path' }, 0], ['never=mkdir', '/e']]);
      assert.equal(status, 139, 'the program panicked');
      const fault = t.domain('rv6_probe.1')?.lastFault ?? '';
      assert.match(fault, /bad-argument: call rv6\.open failed: argument 0 must be string/, 'the fault names the call and the argument');
      assert.equal(t.lines().find((l) => l.op === 'never'), undefined, 'nothing after the bad call ran');
      for (const name of ['rv6', 'fs']) assert.equal(t.domain(name)?.state, 'live', `${name} lives on`);
    }, { file });
    assertClean(file, false, 'after the panic');
  });
});
