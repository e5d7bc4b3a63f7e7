// The umask: the extension records it (a UMASK record, from /proc/<pid>/status) and a restore sets
// it again with umask() run in the restored process, so files it creates get the same modes.

import test from 'ava';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { checkProcessRecord, sampleExtension } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const umaskOf = (pid: number): string | undefined => /^Umask:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];

test('the restored process has the dumped umask: a file it creates gets mode 0666 & ~027', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const made = path.join(dir, 'made');
  const target = await startTarget(t, 'restore_umask', [release, made]);
  t.is(umaskOf(target.pid), '0027');
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  t.is((await readImageExtension(image)).umask, 0o027);
  t.regex(await showText(image), /\numask 0027\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.is(umaskOf(pid), '0027');
  await fsp.writeFile(release, '');
  t.is(await restorer.waitForLine((line) => line.startsWith('mode ')), 'mode 640');
  t.is((await fsp.stat(made)).mode & 0o7777, 0o640);
  t.is(await restorer.exited, 0, restorer.stderr());
});

test('UMASK record: round trip, older images without it, bad records', (t) => {
  const { buf, at } = checkProcessRecord(t, RecordType.UMASK, 'UMASK', { umask: 0o077 });
  t.is(buf.readUInt32LE(at + 4), 4, 'a u32 payload');
  t.is(buf.readUInt32LE(at + 8), 0o077);
  const tooWide = Buffer.from(buf);
  tooWide.writeUInt32LE(0o1000, at + 8);
  t.is(t.throws(() => decodeExtension(tooWide))?.message, `byte ${at + 8}: UMASK record: umask 01000 is not a file mode mask`);
  const longer = Buffer.from(buf);
  longer.writeUInt32LE(8, at + 4);
  t.is(t.throws(() => decodeExtension(longer))?.message, `byte ${at + 4}: UMASK record: length 8, expected 4`);
  t.throws(() => encodeExtension({ ...sampleExtension(), umask: 0o1000 }), { message: /umask 512 is not a file mode mask/ });
});
