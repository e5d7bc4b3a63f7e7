// Who each thread is (THREAD_IDENTITY records): its name and credentials are dumped from /proc
// and taken back by a restore, so a daemon that dropped root comes back as its own user with the
// capabilities it kept, not as the restorer's root.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { fullSampleExtension, recordOffsets } from './helpers/extension-sample.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const CREDENTIAL_LINES = ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs'];

/** Each thread's name and credential lines from /proc, by name. */
function threadIdentities(pid: number): Map<string, string[]> {
  return new Map(readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1').split('\n');
    const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trimEnd();
    return [name, CREDENTIAL_LINES.map((field) => status.find((line) => line.startsWith(`${field}:`))!.replace(/\s+/g, ' ').trim())];
  }));
}

/** The uid column of /proc/net/tcp for the listener on 127.0.0.1:port: who made the socket. */
function listenerOwner(port: number): number | undefined {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const row = readFileSync('/proc/net/tcp', 'latin1').split('\n').map((line) => line.trim().split(/\s+/)).find((f) => f[1] === local && f[3] === '0A');
  return row ? Number(row[7]) : undefined;
}

test('THREAD_IDENTITY: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = recordOffsets(buf).find((r) => r.type === RecordType.THREAD_IDENTITY)!.at;
  const payload = at + 8;
  t.is(buf.readUInt32LE(payload + 4), 12, 'name length');
  t.is(buf.subarray(payload + 8, payload + 24).toString('latin1'), 'redis-server\0\0\0\0');
  t.deepEqual([0, 1, 2, 3].map((i) => buf.readUInt32LE(payload + 24 + 4 * i)), [2001, 2002, 2003, 2002]);
  t.is(buf.readBigUInt64LE(payload + 56 + 3 * 8), 0x1_fffe_dfff_ffn, 'bounding set');
  t.deepEqual([buf.readUInt32LE(payload + 96), buf.readUInt32LE(payload + 100), buf.readUInt32LE(payload + 104)], [0x10, 1, 2]);
  t.deepEqual([buf.readUInt32LE(payload + 112), buf.readUInt32LE(payload + 116)], [100, 200]);

  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(payload, 999), `byte ${at}: THREAD_IDENTITY record: thread 999 has no THREAD record`, "named by its record's start, as other per-thread records");
  t.is(broken(payload + 4, 16), `byte ${payload + 4}: THREAD_IDENTITY record: a name of 16 bytes (1..15)`);
  t.is(broken(payload + 4, 0), `byte ${payload + 4}: THREAD_IDENTITY record: a name of 0 bytes (1..15)`);
  t.is(broken(payload + 20, 0x41), `byte ${payload + 20}: THREAD_IDENTITY record: the name is not NUL-padded`);
  t.is(broken(payload + 100, 2), `byte ${payload + 100}: THREAD_IDENTITY record: no_new_privs 2 is neither 0 nor 1`);
  t.regex(broken(payload + 104, 3) ?? '', /THREAD_IDENTITY record: .*groups/);
  t.is(broken(payload + 108, 1), `byte ${payload + 108}: THREAD_IDENTITY record: pad is not 0`);
});

test.serial('a daemon that dropped root comes back as its own user, with the capabilities it kept, its threads named', async (t) => {
  const target = await startTarget(t, 'restore_creds');
  const port = Number((await target.waitForLine((line) => line.startsWith('ready '))).split(' ')[1]);
  const before = threadIdentities(target.pid);
  t.is(listenerOwner(port), 2002, 'the listener belongs to the dropped user');
  t.deepEqual([...before.keys()].sort(), ['credsleader', 'credsworker']);
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const threads = (await readImageExtension(image)).threads;
  t.like(threads[0].identity, { uids: [2001, 2002, 2003, 2002], gids: [1001, 1002, 1003, 1002], groups: [100, 200], securebits: 0x50, noNewPrivs: true });
  t.like(threads[0].identity?.caps, { effective: 1n << 10n, permitted: 1n << 10n, inheritable: (1n << 10n) | (1n << 13n), ambient: 1n << 10n });
  t.is(threads[0].identity!.caps.bounding & ((1n << 13n) | (1n << 21n)), 0n, 'CAP_NET_RAW and CAP_SYS_ADMIN out of the bounding set');
  t.is(threads[0].identity?.name.toString(), 'credsleader');
  t.is(threads[1].identity?.name.toString(), 'credsworker');
  t.deepEqual(threads[1].identity?.uids, [2001, 2002, 2003, 2001], 'the worker\'s own file-system uid');
  t.regex(await showText(image), /\n {4}name "credsworker" {2}uid 2001\/2002\/2003\/2001 {2}gid 1001\/1002\/1003\/1002 {2}groups 100,200\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.deepEqual(threadIdentities(pid), before, 'every thread\'s name and credentials as dumped');
  t.is(listenerOwner(port), 2002, 'the listener made again as the dropped user, as an SO_REUSEPORT group or SO_PEERCRED would see it');
  t.regex(await restorer.waitForLine((line) => line.startsWith('tick ')), /^tick \d+ 2002$/, 'the worker runs on, as euid 2002');
  t.notRegex(restorer.stderr(), /credentials/);
});
