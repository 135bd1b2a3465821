/**
 * The shell end to end, booted through init on a RAM disk: scripted sessions at the interactive
 * prompt covering pipes, redirections, append, background jobs, lists, and-or, groups, quoting, cd, $?,
 * scripts, `sh -c`, syntax errors, exit codes; a crashing program; init's exit with the shell's
 * status and its restart of a killed shell; console input until Ctrl-D; Ctrl-C of a foreground
 * job (and not of the shell); a background job's read of the console by name (EIO).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testArtifactPath } from '../../src/kernel/paths.js';
import { programsImage, Session, withSession } from './session.js';

/**
 * Ctrl-C until the shell prompts again: the command typed before may not have reached the console
 * foreground yet on a loaded machine, and a Ctrl-C at the prompt ends nothing, so repeating is safe.
 */
async function interruptUntilPrompt(s: Session, from: number): Promise<void> {
  const prompted = (): boolean => s.out.length > from && s.out.endsWith('$ ');
  for (let i = 0; i < 100 && !prompted(); i++) {
    s.core.consoleInterrupt();
    const until = Date.now() + 200;
    while (!prompted() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  }
  await s.until(prompted, 'the prompt after Ctrl-C');
}

test('sh: pipes, redirections, append, lists, and-or, quoting, $?', async () => {
  await withSession(async (s) => {
    assert.equal(await s.run('echo hello world'), 'hello world\n');
    assert.equal(await s.run('echo one > f; echo two >> f; cat f'), 'one\ntwo\n');
    assert.equal(await s.run('cat < f | grep tw'), 'two\n');
    assert.equal(await s.run('cat f | cat | cat | wc -l'), '2\n');
    assert.equal(await s.run('echo x > f; cat f'), 'x\n', '> truncates');
    assert.equal(await s.run('false || echo or; true && echo and; false && echo never; true || echo never'), 'or\nand\n');
    assert.equal(await s.run('false; echo $?; true; echo $?'), '1\n0\n');
    assert.equal(await s.run('false && echo a || echo b $?'), 'b 1\n');
    assert.equal(await s.run(`echo "a  b" 'c  d' e\\ f "q\\"q" 'it'\\''s' "$?" '$?' x#y # comment`), 'a  b c  d e f q"q it\'s 0 $? x#y\n');
    assert.equal(await s.run(`echo ''; echo "" | wc -c`), '\n1\n');
    // Continuation lines: the shell prompts with `> ` until the command is complete.
    s.type("echo 'multi\n");
    await s.until(() => s.out.endsWith('> '), 'the continuation prompt');
    assert.equal(await s.run("line'"), 'multi\nline\n');
    assert.equal(await s.run('echo a |\ncat'), '> a\n');
    // stderr redirections.
    assert.equal(await s.run('cat nosuch 2> err; cat err'), 'cat: nosuch: No such file or directory\n');
    assert.equal(await s.run('cat nosuch 2>&1 | grep -c such'), '1\n');
    assert.equal(await s.run('cat nosuch > out 2>&1; cat out'), 'cat: nosuch: No such file or directory\n');
    assert.equal(await s.run('> empty; wc -c empty'), '0 empty\n');
  });
});

test('sh: exit statuses, command not found, redirection errors, syntax errors', async () => {
  await withSession(async (s) => {
    assert.deepEqual(await s.status('nosuch arg'), { out: 'sh: nosuch: command not found\n', status: 127 });
    assert.deepEqual(await s.status('cat < missing'), { out: 'sh: missing: No such file or directory\n', status: 1 });
    assert.deepEqual(await s.status('echo a | nosuch'), { out: 'sh: nosuch: command not found\n', status: 127 });
    assert.deepEqual(await s.status('nosuch | echo a'), { out: 'sh: nosuch: command not found\na\n', status: 0 });
    assert.deepEqual(await s.status('echo a | | b'), { out: "sh: syntax error near unexpected '|'\n", status: 2 });
    assert.deepEqual(await s.status('echo >'), { out: "sh: syntax error near unexpected 'newline'\n", status: 2 });
    assert.deepEqual(await s.status("sh -c 'exit 3'"), { out: '', status: 3 });
    assert.deepEqual(await s.status("sh -c 'echo in -c; false'"), { out: 'in -c\n', status: 1 });
    assert.deepEqual(await s.status("sh -c 'echo \"unterminated'"), { out: 'sh: -c: unterminated "\n', status: 2 });
    // exit as bash: a non-numeric status is an error that still exits, with 2; too many arguments
    // is one that does not (status 1); a status is taken modulo 256, exactly however long.
    assert.deepEqual(await s.status("sh -c 'exit x; echo never'"), { out: 'sh: exit: x: numeric argument required\n', status: 2 });
    assert.deepEqual(await s.status("sh -c 'exit 1 2; echo still $?'"), { out: 'sh: exit: too many arguments\nstill 1\n', status: 0 });
    for (const [arg, status] of [['256', 0], ['257', 1], ['-1', 255], ['+3', 3], ['9007199254740993', 1], ['9223372036854775807', 255]] as const) {
      assert.deepEqual(await s.status(`sh -c 'exit ${arg}'`), { out: '', status }, `exit ${arg}`);
    }
    assert.deepEqual(await s.status("sh -c 'exit 9223372036854775808'"), { out: 'sh: exit: 9223372036854775808: numeric argument required\n', status: 2 });
    // At the prompt: too many arguments leaves the (inner) shell running, a bad status ends it.
    await s.run('sh');
    assert.deepEqual(await s.status('exit 1 2'), { out: 'sh: exit: too many arguments\n', status: 1 });
    assert.deepEqual(await s.status('exit abc'), { out: 'sh: exit: abc: numeric argument required\n', status: 2 });
    assert.deepEqual(await s.status('cd /nowhere'), { out: 'sh: cd: /nowhere: No such file or directory\n', status: 1 });
    assert.deepEqual(await s.status('cd / | cat'), { out: 'sh: cd: a builtin cannot be part of a pipeline\n', status: 1 });
  });
});

test('sh: cd and relative paths', async () => {
  await withSession(async (s) => {
    assert.equal(await s.run('mkdir d; cd d; echo in-d > g; cat g; cat /d/g'), 'in-d\nin-d\n');
    assert.equal(await s.run('mkdir e; cd e; cat ../g; cd ..; cd ..; cat d/g'), 'in-d\nin-d\n');
    assert.equal(await s.run('cd d/e; cd; cat d/g'), 'in-d\n', 'cd alone goes to /');
    assert.equal(await s.run('pwd; cd d/e; pwd; cd ../..; pwd; cd d; pwd | cat'), '/\n/d/e\n/\n/d\n', 'pwd, a program, sees the shell\'s directory');
    assert.deepEqual(await s.status('pwd x'), { out: "pwd: extra operand 'x'\nusage: pwd\n", status: 2 });
  });
});

test('sh: ( groups ) run in a subshell: piped and redirected as one command; cd and exit stay inside', async () => {
  await withSession(async (s) => {
    assert.equal(await s.run('(echo a; echo b) | wc -l'), '2\n');
    assert.equal(await s.run('(echo one; echo two | cat) > f; cat f'), 'one\ntwo\n');
    assert.equal(await s.run('mkdir d; (cd d; echo in-d > g); cat d/g; cat g'), 'in-d\ncat: g: No such file or directory\n', "the group's cd stays in it");
    assert.deepEqual(await s.status('(exit 3); echo after $?'), { out: 'after 3\n', status: 0 });
    assert.deepEqual(await s.status('(false || (echo nested; exit 4)) && echo no'), { out: 'nested\n', status: 4 });
    // An open group asks for more lines.
    s.type('(echo a\n');
    await s.until(() => s.out.endsWith('> '), 'the continuation prompt');
    assert.equal(await s.run('echo b) | wc -l'), '2\n');
  });
});

test('sh: scripts, stdin scripts, and $? inside them', async () => {
  const script = '# a script\necho start\nfalse\necho status $?\nmissingcmd\necho "after $?"\nexit 5\necho never\n';
  const image = programsImage({ files: { 's.sh': script, 'bad.sh': 'echo ok\necho "open\n', 'cmds': 'echo from stdin\necho two | cat\n' } });
  await withSession(async (s) => {
    assert.deepEqual(await s.status('sh s.sh'), { out: 'start\nstatus 1\nsh: missingcmd: command not found\nafter 127\n', status: 5 });
    assert.deepEqual(await s.status('sh bad.sh'), { out: 'ok\nsh: bad.sh: line 2: unterminated "\n', status: 2 });
    assert.deepEqual(await s.status('sh < cmds'), { out: 'from stdin\ntwo\n', status: 0 });
    assert.deepEqual(await s.status('cat cmds | sh'), { out: 'from stdin\ntwo\n', status: 0 });
    assert.deepEqual(await s.status('sh nosuch.sh'), { out: 'sh: nosuch.sh: No such file or directory\n', status: 127 });
    // A script that opens but cannot be read is named, as sh names it (it said `sh: read: ...`).
    assert.deepEqual(await s.status('sh /bin'), { out: 'sh: /bin: Is a directory\n', status: 126 });
    assert.deepEqual(await s.status('sh /bin/ls'), { out: 'sh: /bin/ls: is a program, not a shell script (run it as a command: /bin/ls)\n', status: 126 });
  }, image);
});

test('sh: a script shares its stdin with the commands it runs (read byte by byte)', async () => {
  const image = programsImage({ files: { 'in': 'cat\nthis line is data for cat\n' } });
  await withSession(async (s) => {
    assert.equal(await s.run('sh < in'), 'this line is data for cat\n');
  }, image);
});

test('sh: background jobs, wait, and kill', async () => {
  await withSession(async (s) => {
    const bg = await s.run('sleep 1 && echo bg-done &');
    assert.match(bg, /^\[\d+\]\n$/);
    assert.equal(await s.run('echo fg'), 'fg\n', 'the shell does not wait for a background job');
    await s.run('wait');
    assert.ok(s.out.includes('bg-done\n'), 'the job ran to its end by the time wait returned');
    const started = await s.run('sleep 30 &');
    const pid = /^\[(\d+)\]/.exec(started)![1];
    assert.match(await s.run('ps'), new RegExp(`\\n${pid} \\d+ ${pid} \\w+ sleep\\n`), 'a background job leads its own group');
    assert.equal(await s.run(`kill ${pid}`), '');
    assert.equal(await s.run('wait; echo done'), 'done\n');
    assert.doesNotMatch(await s.run('ps'), new RegExp(`\\n${pid} `), 'the killed job was reaped');
    // Starting a job sets $? to 0.
    assert.match(await s.run('false; sleep 0 & echo $?'), /^\[\d+\]\n0\n$/);
  });
});

test('sh: a background job reads an empty input, not the lines typed for the shell', async () => {
  await withSession(async (s) => {
    // What a job printed, without the shell's `[pid]` (which may come before or after it).
    const job = async (line: string): Promise<string> => {
      const out = await s.run(line);
      assert.match(out, /^\[\d+\]$/m, `${line} announced its job`);
      return out.replace(/^\[\d+\]\n/m, '');
    };
    // Without a redirection, `cat &` and `wc &` see end of file at once (POSIX's /dev/null) ...
    await job('cat &');
    assert.equal(await s.run('echo typed-for-the-shell'), 'typed-for-the-shell\n');
    await s.run('wait');
    assert.equal(await job('wc & wait'), '0 0 0\n');
    // ... and so does every pipeline of an and-or list run in the background.
    assert.equal(await job('true && cat | wc -c & wait'), '0\n');
    // A redirection still gives a job its input.
    await s.run('echo from-a-file > f');
    assert.equal(await job('cat < f & wait'), 'from-a-file\n');
  });
});

test('sh: a background job that opens the console by name cannot read it (EIO); typed lines stay for the foreground', async () => {
  await withSession(async (s) => {
    assert.match(await s.run('sleep 0.3 && cat /dev/console || echo cat-failed $? &'), /^\[\d+\]\n$/);
    // Typed ahead while a foreground `sleep` runs: the job's read comes meanwhile and must not take it.
    const from = s.out.length;
    s.type('sleep 1\n');
    s.type('echo typed-ahead\n');
    await s.until(() => s.out.slice(from).includes('typed-ahead\n$ '), 'the shell to run the typed-ahead line', 10_000);
    await s.until(() => s.out.slice(from).includes('cat-failed'), 'the job to end');
    const out = s.out.slice(from);
    assert.ok(out.includes('cat: /dev/console: Input/output error\ncat-failed 1\n'), out);
    assert.ok(!out.includes('echo typed-ahead'), 'the job did not copy the typed line');
    // At the prompt too (the shell's group keeps the input while no job is in the foreground).
    assert.equal(await s.run('cat /dev/console || echo cat-failed $? & wait').then((o) => o.replace(/^\[\d+\]\n/m, '')), 'cat: /dev/console: Input/output error\ncat-failed 1\n');
    // In the foreground, the console opened by name reads as stdin does.
    s.type('cat /dev/console\n');
    s.type('for-cat\n');
    await s.until(() => s.out.endsWith('for-cat\n'), 'cat to copy the line');
    s.core.consoleEof();
    await s.until(() => s.out.endsWith('$ '), 'the prompt after Ctrl-D');
    assert.equal(await s.run('echo $?'), '0\n');
  });
});

test('sh: a program that crashes: the shell says so and $? is 139', async () => {
  const image = programsImage({ files: { 'bin/probe': readFileSync(testArtifactPath('rv6_probe')) } });
  await withSession(async (s) => {
    const r = await s.status(`probe '["crash"]'`);
    assert.match(r.out, /^sh: probe: crashed \(pid \d+\)\n$/);
    assert.equal(r.status, 139);
    assert.equal(await s.run('echo still here'), 'still here\n');
  }, image);
});

test('sh: exit ends init with the status; a killed shell is restarted by init', async () => {
  const s = await Session.start();
  try {
    assert.equal(await s.run('echo $$'), '$$\n', 'only $? expands');
    const out = await s.run('kill 2');
    assert.match(out, /init: \/bin\/sh \(pid 2\) was killed \(status 137\); starting a new one\ninit: starting \/bin\/sh\n$/);
    assert.equal(await s.run('echo new shell'), 'new shell\n');
    s.type('exit 7\n');
    assert.equal(await s.exitStatus(), 7);
  } finally {
    await s.stop();
  }
});

test('sh: programs read the console until Ctrl-D; an interactive shell inside the shell', async () => {
  await withSession(async (s) => {
    const from = s.out.length;
    s.type('grep b\n');
    s.type('abc\n');
    s.type('xyz\n');
    s.type('b again\n');
    await s.until(() => s.out.endsWith('abc\nb again\n'), 'grep to print the matching lines');
    s.core.consoleEof();
    await s.until(() => s.out.endsWith('$ '), 'the prompt after Ctrl-D');
    assert.equal(s.out.slice(from), 'abc\nb again\n$ ');
    assert.equal(await s.run('sh'), '', 'an inner interactive shell prompts');
    assert.equal(await s.run('echo inner'), 'inner\n');
    assert.equal(await s.run('exit 3'), '');
    assert.equal(await s.run('echo $?'), '3\n');
    // Ctrl-D at the inner shell's prompt ends it with the last status.
    await s.run('sh');
    await s.run('false');
    const at = s.out.length;
    s.core.consoleEof();
    await s.until(() => s.out.length > at && s.out.endsWith('$ '), 'the outer prompt');
    assert.equal(await s.run('echo $?'), '1\n');
  });
});

test('sh: Ctrl-C ends the foreground job only', async () => {
  await withSession(async (s) => {
    const from = s.out.length;
    s.type('sleep 30\n');
    await interruptUntilPrompt(s, from);
    assert.equal(s.out.slice(from), '$ ');
    assert.equal(await s.run('echo $?'), '130\n');
    s.core.consoleInterrupt(); // at the prompt: nothing to interrupt, the shell lives on
    assert.equal(await s.run('echo alive'), 'alive\n');
    // A pipeline reading the console: interrupted as a whole.
    const before = s.out.length;
    s.type('cat | grep x\n');
    await interruptUntilPrompt(s, before);
    assert.equal(s.out.slice(before), '$ ');
    assert.equal(await s.run('echo $?'), '130\n');
    s.type('exit 4\n');
    assert.equal(await s.exitStatus(), 4);
  });
});

test('sh: Ctrl-C interrupts wait (status 130), not the background job', async () => {
  await withSession(async (s) => {
    const pid = /\[(\d+)\]/.exec(await s.run('sleep 30 &'))![1]!;
    const from = s.out.length;
    // Ctrl-C once the shell has read the line (a Ctrl-C before would drop it, unread).
    s.type('echo waiting; wait\n');
    await s.until(() => s.out.slice(from).includes('waiting\n'), 'the echo before wait');
    await interruptUntilPrompt(s, from);
    assert.equal(s.out.slice(from), 'waiting\n$ ');
    assert.equal(await s.run('echo $?'), '130\n');
    assert.match(await s.run('ps'), new RegExp(`\\n${pid} 2 ${pid} \\w+ sleep\\n`), 'the job lives on');
    assert.equal(await s.run(`kill ${pid}; wait; echo $?`), '0\n');
  });
});
