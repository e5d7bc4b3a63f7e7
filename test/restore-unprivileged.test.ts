// A restore without root: a user restores an image of a process of its own. What needs root is
// left as the restorer has it (the pid, also with --pid-ns, the stub's exe link, the host's
// clocks), one warning each, and the process runs on as that user.

import test from 'ava';
import { chownSync, readFileSync, readlinkSync, unlinkSync } from 'node:fs';
import { makeTempDir } from './helpers/files.js';
import { continuesCount, dumpToFile, imageWord, killOriginal, numbersOf, readImageExtension, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const NOBODY = 65534;

test.serial('a user restores an image of its own process: it runs on as that user, with one warning for each thing only root could give', async (t) => {
  const target = await startTarget(t, 'counter', [], { runAs: NOBODY });
  await target.waitForLine((line) => line === 'tick 2');
  const dir = await makeTempDir(t, 'imgfs-unprivileged-');
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  for (const file of [dir, image]) chownSync(file, NOBODY, NOBODY);
  const dumped = Number(await imageWord(image, parseInt(target.info[1], 16)));

  const restorer = startRestorer(t, [image, '--detach'], {
    command: ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import=tsx', 'src/cli.ts', 'restore', image, '--detach', '--pid-ns'],
  });
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  t.regex(readFileSync(`/proc/${pid}/status`, 'latin1'), new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
  const tick = await restorer.waitForLine((line) => line.startsWith('tick '));
  t.true(continuesCount(numbersOf(tick)[0], dumped), `${tick} goes on from the dumped ${dumped}`);
  const warnings = restorer.stderr();
  t.regex(warnings, /warning: CLOCK_MONOTONIC jumps by [\d.]+ s since the dump: keeping it needs a time namespace, which needs CAP_SYS_ADMIN\n/);
  t.true(warnings.includes(`warning: --pid-ns: choosing pid ${target.pid} needs CAP_SYS_ADMIN: the process is restored with pid ${pid}\n`), warnings);
  t.true(warnings.includes(`warning: /proc/<pid>/exe names the restorer's stub, not ${target.binary}: setting it needs CAP_CHECKPOINT_RESTORE\n`), warnings);
  t.notRegex(warnings, /^imgfs restore: (?!warning)/m, 'no error');

  // Its next image names its program, not the stub its exe link was left on.
  t.not(readlinkSync(`/proc/${pid}/exe`), target.binary);
  const again = await dumpToFile(t, { ...target, pid }, await makeTempDir(t, 'imgfs-unprivileged-again-'));
  t.is((await readImageExtension(again)).exe, target.binary);
});

test.serial('a user restores its process whose program was deleted since: it runs from the bytes the image carries, with a warning saying why its exe link is the stub\'s', async (t) => {
  const dir = await makeTempDir(t, 'imgfs-unprivileged-deleted-');
  chownSync(dir, NOBODY, NOBODY);
  const target = await startTarget(t, 'counter', [], { runAs: NOBODY, copyInto: dir });
  const program = target.binary;
  unlinkSync(program);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  chownSync(image, NOBODY, NOBODY);
  const restorer = startRestorer(t, [image, '--detach'], {
    command: ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import=tsx', 'src/cli.ts', 'restore', image, '--detach'],
  });
  await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  t.regex(await restorer.waitForLine((line) => line.startsWith('tick ')), /^tick \d+$/);
  t.true(restorer.stderr().includes(`warning: the executable ${program} (deleted): its carried bytes are reached through /proc/<pid>/map_files, which needs CAP_CHECKPOINT_RESTORE: /proc/<pid>/exe names the restorer's stub instead\n`), restorer.stderr());
});
