// Mutated /proc text must either parse into a sane value or raise ProcParseError: never
// another exception type, never a hang (ava's timeout catches that).

import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import { PAGE_SIZE } from '../src/model.js';
import { ProcParseError } from '../src/proc/errors.js';
import { parsePasswdGroups } from '../src/proc/owner.js';
import { parseSmaps, parseSmapsByLine } from '../src/proc/smaps.js';
import { parseStat } from '../src/proc/stat.js';
import { statusField, statusMask, statusNumber } from '../src/proc/status.js';
import { parseTimensOffsets } from '../src/proc/timens.js';
import { anonInodeState } from '../src/restoreinfo.js';
import { prng } from './helpers/prng.js';

const ROUNDS = 4000;
const SEED = 0x1badcafe;

// Characters the parsers treat specially, plus arbitrary ones.
const ALPHABET = '0123456789abcdefx-:() \n\tkBVmFlags[]/rwxsp\u0000\u00ff\ufffd';

function mutate(text: string, random: () => number): string {
  const pick = (n: number) => Math.floor(random() * n);
  const char = () => (random() < 0.8 ? ALPHABET[pick(ALPHABET.length)] : String.fromCharCode(pick(0x10000)));
  const garbage = () => Array.from({ length: 1 + pick(20) }, char).join('');
  let result = text;
  for (let n = 1 + pick(3); n > 0; n--) {
    const at = pick(result.length + 1);
    const lines = result.split('\n');
    const line = pick(lines.length);
    switch (pick(6)) {
      case 0: result = result.slice(0, at) + char() + result.slice(at + 1); break;
      case 1: result = result.slice(0, at); break;
      case 2: result = result.slice(0, at) + garbage() + result.slice(at); break;
      case 3: lines.splice(line, 0, lines[line]); result = lines.join('\n'); break;
      case 4: lines.splice(line, 1); result = lines.join('\n'); break;
      default: result = result.slice(0, at) + result.slice(at + 1 + pick(40)); break;
    }
  }
  return result;
}

/** Runs parse on ROUNDS mutations of the inputs; returns how many parsed. */
function fuzz<T>(t: ExecutionContext, inputs: string[], parse: (text: string) => T, check: (value: T) => void): number {
  const random = prng(SEED);
  let parsed = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const input = mutate(inputs[round % inputs.length], random);
    let value: T;
    try {
      value = parse(input);
    } catch (error) {
      if (!(error instanceof ProcParseError)) {
        t.fail(`round ${round}: ${String(error)} on input ${JSON.stringify(input)}`);
        return parsed;
      }
      continue;
    }
    check(value);
    parsed++;
  }
  return parsed;
}

// The first few mappings of this very process plus hand-made names: enough variety, fast to parse.
function smapsInputs(): string[] {
  const own = fs.readFileSync('/proc/self/smaps', 'utf8').split('\n');
  const headers = own.flatMap((line, i) => (/^[0-9a-f]+-/.test(line) ? [i] : []));
  return [
    `${own.slice(0, headers[6]).join('\n')}\n`,
    fs.readFileSync('/proc/self/maps', 'utf8').split('\n').slice(0, 12).join('\n'),
    '7f3346000000-7f3346001000 rw-s 00000000 00:01 4123                       /memfd:ring buffer (deleted)\n'
      + 'Size:                  4 kB\nVmFlags: rd wr sh mr mw me ms sd \n'
      + 'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\nVmFlags: ex \n',
  ];
}

test('mutated smaps parses into ordered page-aligned mappings or throws ProcParseError', (t) => {
  const parsed = fuzz(t, smapsInputs(), parseSmaps, (vmas) => {
    let previousEnd = 0;
    for (const vma of vmas) {
      if (!(vma.start % PAGE_SIZE === 0 && vma.end % PAGE_SIZE === 0 && previousEnd <= vma.start && vma.start < vma.end)) {
        t.fail(`unordered or unaligned mapping ${vma.start.toString(16)}-${vma.end.toString(16)}`);
      }
      previousEnd = vma.end;
    }
  });
  t.log(`${parsed} of ${ROUNDS} mutations parsed`);
  t.pass();
});

test('parseSmaps reads real and mutated smaps exactly as the line-by-line reference does', (t) => {
  const outcome = (parse: (text: string) => unknown, text: string) => {
    try {
      return { vmas: parse(text) };
    } catch (error) {
      return { error: error instanceof ProcParseError ? error.message : `not a ProcParseError: ${String(error)}` };
    }
  };
  const random = prng(SEED ^ 0x5eed);
  const real = [fs.readFileSync('/proc/self/smaps', 'utf8'), fs.readFileSync('/proc/self/maps', 'utf8')];
  const inputs = smapsInputs();
  let agreedOnMappings = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const input = round < real.length ? real[round] : mutate(inputs[round % inputs.length], random);
    const fast = outcome(parseSmaps, input);
    const reference = outcome(parseSmapsByLine, input);
    if (JSON.stringify(fast, (_, v) => (v instanceof Set ? [...v] : v)) !== JSON.stringify(reference, (_, v) => (v instanceof Set ? [...v] : v))) {
      return t.fail(`round ${round}: ${JSON.stringify(input)}`);
    }
    if ('vmas' in fast) agreedOnMappings++;
  }
  t.true(agreedOnMappings > ROUNDS / 10, `${agreedOnMappings} inputs parsed`);
});

test('mutated stat parses into whole fields or throws ProcParseError', (t) => {
  const inputs = [
    fs.readFileSync('/proc/self/stat', 'utf8'),
    fs.readFileSync('/proc/1/stat', 'utf8'),
    fs.readFileSync('/proc/self/stat', 'utf8').replace(/\(.*\)/s, '(a) (b) c)'),
  ];
  const parsed = fuzz(t, inputs, parseStat, (stat) => {
    const numbers = Object.entries(stat).filter(([key]) => key !== 'comm' && key !== 'state');
    if (stat.state.length !== 1 || !numbers.every(([, value]) => Number.isInteger(value))) {
      t.fail(`malformed result ${JSON.stringify(stat)}`);
    }
  });
  t.log(`${parsed} of ${ROUNDS} mutations parsed`);
  t.pass();
});

test('mutated timens_offsets parses into whole nanosecond offsets, never an error', (t) => {
  const inputs = ['monotonic           0         0\nboottime            0         0\n', 'monotonic          -5 300000000\nboottime 86400 1\n'];
  const parsed = fuzz(t, inputs, parseTimensOffsets, (offsets) => {
    if (typeof offsets.monotonic !== 'bigint' || typeof offsets.boottime !== 'bigint') t.fail(`malformed result ${String(offsets)}`);
  });
  t.is(parsed, ROUNDS);
});

test('mutated inotify fdinfo parses into watches ascending by descriptor, never an error', (t) => {
  const inputs = [
    'pos:\t0\nflags:\t02004000\nmnt_id:\t17\nino:\t1038\n'
      + 'inotify wd:3 ino:6107e sdev:fe00000 mask:fff ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:7e10060000000000\n'
      + 'inotify wd:2 ino:13 sdev:fe00000 mask:80000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:1300000000000000\n',
  ];
  const parsed = fuzz(t, inputs, (text) => anonInodeState('anon_inode:inotify', text, 'fdinfo', () => '/watched').inotify!, (watches) => {
    if (!watches.every((w, i) => Number.isInteger(w.wd) && Number.isInteger(w.mask) && (i === 0 || watches[i - 1].wd <= w.wd))) {
      t.fail(`malformed result ${JSON.stringify(watches, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    }
  });
  t.is(parsed, ROUNDS);
});

test('mutated status fields read as text, a whole number and a mask, or as missing; never an error', (t) => {
  const inputs = [
    'Name:\tcat\nUmask:\t0022\nState:\tR (running)\nTgid:\t4242\nTracerPid:\t0\nUid:\t0\t1000\t0\t0\n'
      + 'Groups:\t4 24 27 \nSigPnd:\t0000000000000000\nSigCgt:\t0000000180004a03\nCapEff:\t000001ffffffffff\nSeccomp:\t2\nSeccomp_filters:\t1\n',
  ];
  const parsed = fuzz(t, inputs, (text) => ({
    umask: statusField(text, 'Umask'), tgid: statusNumber(text, 'Tgid'), uid: statusNumber(text, 'Uid'), caught: statusMask(text, 'SigCgt'),
  }), ({ umask, tgid, uid, caught }) => {
    if (!(umask === undefined || typeof umask === 'string') || ![tgid, uid].every((n) => Number.isInteger(n) && n >= 0) || caught < 0n) {
      t.fail(`malformed result ${umask} ${tgid} ${uid} ${caught}`);
    }
  });
  t.is(parsed, ROUNDS);
});

test('mutated /etc/passwd parses into whole uids and gids, never an error', (t) => {
  const inputs = ['root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n'];
  const parsed = fuzz(t, inputs, parsePasswdGroups, (groups) => {
    for (const [uid, gid] of groups) {
      if (!Number.isInteger(uid) || !Number.isInteger(gid)) t.fail(`malformed entry ${uid}:${gid}`);
    }
  });
  t.is(parsed, ROUNDS);
});
