import test from 'ava';
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CKPT_X86_SEG_USER64_CS, HEADER_SIZE, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MM_SIZE, PAGE_RECORD_SIZE,
  REGS_SIZE, TRAILER_SIZE, VMA_SIZE, VMA_TERMINATOR, encodeHeader, encodeMm, encodeRegs, encodeVma,
} from '../src/format.js';
import type { MmFields, UserRegs, Vma } from '../src/model.js';
import { ImageFormatError, formatImage, readImage, showMain } from '../src/show.js';
import { maxImageVmas } from '../src/imagestream.js';
import { fileErrorMessage } from '../src/errors.js';
import type { ImageSummary } from '../src/show.js';
import { run } from './helpers/run.js';

const PAGE = 4096;
const REGS_AT = HEADER_SIZE;
const MM_AT = REGS_AT + REGS_SIZE;
const VMAS_AT = MM_AT + MM_SIZE;

const REGS: UserRegs = {
  r15: 15n, r14: 14n, r13: 13n, r12: 12n, rbp: 0x7ffd1000n, rbx: 0xbn, r11: 0x246n, r10: 10n, r9: 9n,
  r8: 8n, rax: 0xfffffffffffffe00n, rcx: 0xcn, rdx: 0xdn, rsi: 0x51n, rdi: 0xd1n, orig_rax: 0x22n,
  rip: 0x555555555123n, cs: 0x33n, eflags: 0x246n, rsp: 0x7ffd0ff0n, ss: 0x2bn, fs_base: 0x7f0000001740n,
  gs_base: 0n, ds: 0n, es: 0n, fs: 0n, gs: 0n,
};

const MM: MmFields = {
  flags: 0x8000000dn, defFlags: 0n, startCode: 0x555555554000, endCode: 0x555555555000,
  startData: 0x555555557000, endData: 0x555555558000, startBrk: 0x555555559000, brk: 0x55555557a000,
  startStack: 0x7ffd0fff0000, argStart: 0x7ffd0fff1000, argEnd: 0x7ffd0fff1010, envStart: 0x7ffd0fff1010,
  envEnd: 0x7ffd0fff1fe0,
};

function vma(start: number, end: number, over: Partial<Vma> = {}): Vma {
  return {
    start, end, read: true, write: true, exec: false, mayShare: false, offset: 0, dev: '00:00', inode: 0,
    name: '', vmFlags: new Set(['rd', 'wr']), ...over,
  };
}

const VMAS = [
  vma(0x555555554000, 0x555555556000, { write: false, exec: true, inode: 7, dev: '08:01', name: '/bin/t' }),
  vma(0x555555559000, 0x55555557a000, { name: '[heap]' }),
  vma(0x7f0000000000, 0x7f0000010000, { mayShare: true, inode: 9, dev: '00:01', name: '/dev/zero (deleted)' }),
  vma(0x7ffd0ffde000, 0x7ffd0ffff000, { name: '[stack]' }),
];
const PAGES = [0x555555554000, 0x555555559000, 0x55555555a000, 0x55555555c000, 0x7ffd0fffe000];

/** A v0 image built with the encoders under test; page i holds the byte i + 1 throughout. */
function buildImage(vmas: Vma[] = VMAS, pages: number[] = PAGES, extension = Buffer.alloc(0)): Buffer {
  const pageRecords = pages.map((addr, i) => {
    const record = Buffer.alloc(PAGE_RECORD_SIZE, i + 1);
    record.writeBigUInt64LE(BigInt(addr), 0);
    return record;
  });
  return Buffer.concat([
    encodeHeader(), encodeRegs(REGS, []), encodeMm(MM), ...vmas.map(encodeVma), VMA_TERMINATOR,
    ...pageRecords, Buffer.alloc(TRAILER_SIZE), extension,
  ]);
}

const pagesAt = (vmaCount: number) => VMAS_AT + (vmaCount + 1) * VMA_SIZE;

/** Splits a buffer into chunks of the given size, to cross every record boundary. */
function* chunks(buf: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

async function expectError(t: import('ava').ExecutionContext, image: Buffer, offset: number, message: RegExp) {
  const err = await t.throwsAsync(readImage([image]), { instanceOf: ImageFormatError });
  t.is(err?.offset, offset, err?.message);
  t.regex(err?.message ?? '', message);
  t.true(err?.message.startsWith(`byte ${offset}: `));
}

function checkSummary(t: import('ava').ExecutionContext, s: ImageSummary, image: Buffer) {
  t.deepEqual(s.header, { magic: 0xa75b8d43, version: 0x100 });
  t.is(s.regs.ip, REGS.rip);
  t.is(s.regs.ax, REGS.rax);
  t.is(s.regs.fs, REGS.fs_base);
  t.is(s.regs.cs, CKPT_X86_SEG_USER64_CS);
  t.is(s.mm.brk, BigInt(MM.brk));
  t.is(s.mm.exeFd, 0);
  t.is(s.vmas.length, 4);
  t.deepEqual(s.vmas.map((v) => v.pages), [1, 3, 0, 1]);
  t.deepEqual(s.vmas.map((v) => v.flags), [MAP_PRIVATE, MAP_ANONYMOUS | MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS | MAP_PRIVATE]);
  t.is(s.vmas[1].start, 0x555555559000n);
  t.is(s.pageCount, 5);
  t.is(s.size, image.length);
}

test('readImage round-trips an image built with the encoders', async (t) => {
  const image = buildImage();
  const s = await readImage([image]);
  checkSummary(t, s, image);
  t.is(s.extension, undefined);
});

test('readImage reads chunk by chunk, whatever the chunk boundaries', async (t) => {
  const image = buildImage();
  for (const size of [1, 7, 40, 4103, 4104, 4105, 100000]) {
    checkSummary(t, await readImage(chunks(image, size)), image);
  }
});

test('readImage reads a file by path and by descriptor, across 1 MiB chunks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgfs-show-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const heap = vma(0x10000000, 0x10000000 + 600 * PAGE);
  const pages = Array.from({ length: 600 }, (_, i) => 0x10000000 + i * PAGE);
  const image = buildImage([heap], pages);
  const file = join(dir, 'big.img');
  writeFileSync(file, image);
  const byPath = await readImage(file);
  t.is(byPath.pageCount, 600);
  t.is(byPath.size, image.length);
  const fd = openSync(file, 'r');
  t.teardown(() => closeSync(fd));
  const byFd = await readImage(fd);
  t.deepEqual(byFd, byPath);
});

test('bytes after the trailer must be an extension (test/extension.test.ts decodes real ones)', async (t) => {
  const extension = Buffer.from('not v0 at all, and not zero');
  const image = buildImage(VMAS, PAGES, extension);
  const err = await t.throwsAsync(readImage(chunks(image, 1000)), { instanceOf: ImageFormatError });
  t.is(err?.offset, image.length - extension.length);
  t.regex(err?.message ?? '', /bad extension magic/);
});

test('an image with no VMAs and no pages', async (t) => {
  const image = buildImage([], []);
  t.is(image.length, VMAS_AT + VMA_SIZE + TRAILER_SIZE);
  const s = await readImage([image]);
  t.deepEqual(s.vmas, []);
  t.is(s.pageCount, 0);
});

test('errors: header', async (t) => {
  await expectError(t, Buffer.alloc(0), 0, /the image is empty \(0 bytes\)/);
  await expectError(t, Buffer.alloc(3), 0, /image ends inside the header \(expected 8 bytes, got 3\)/);
  await expectError(t, buildImage().subarray(0, 5), 0, /expected 8 bytes, got 5/);
  const badMagic = buildImage();
  badMagic.writeUInt32LE(0x12345678, 0);
  await expectError(t, badMagic, 0, /^byte 0: bad magic 0x12345678, expected 0xa75b8d43$/);
  const core = buildImage();
  core.write('\x7fELF', 0, 'latin1');
  await expectError(t, core, 0, /^byte 0: bad magic 0x464c457f, expected 0xa75b8d43: this is an ELF file \(a core\?\), not a dump image$/);
  const badVersion = buildImage();
  badVersion.writeUInt32LE(0x200, 4);
  await expectError(t, badVersion, 4, /unsupported version 0x200, expected 0x100/);
});

test('errors: registers and mm', async (t) => {
  await expectError(t, buildImage().subarray(0, 100), REGS_AT, /image ends inside the registers \(expected 208 bytes, got 92\)/);
  const badSegment = buildImage();
  badSegment.writeUInt16LE(0x4003, REGS_AT + 196);
  await expectError(t, badSegment, REGS_AT + 196, /cs: segment code 0x4003/);
  await expectError(t, buildImage().subarray(0, MM_AT + 50), MM_AT, /image ends inside the mm record \(expected 112 bytes, got 50\)/);
});

test('errors: vma records', async (t) => {
  const at = (i: number, field: number) => VMAS_AT + i * VMA_SIZE + field;
  const patched = (patch: (image: Buffer) => void) => {
    const image = buildImage();
    patch(image);
    return image;
  };
  await expectError(t, patched((b) => b.writeBigUInt64LE(0x555555554800n, at(0, 16))), at(0, 16), /vma #0 0x555555554800-.*start is not page-aligned/);
  await expectError(t, patched((b) => b.writeBigUInt64LE(0x55555557a001n, at(1, 24))), at(1, 24), /vma #1 .*end is not page-aligned/);
  await expectError(t, patched((b) => b.writeBigUInt64LE(0x555555559000n, at(1, 24))), at(1, 24), /vma #1 .*end is not above start/);
  // overlapping: vma #1 starts inside vma #0
  await expectError(t, patched((b) => b.writeBigUInt64LE(0x555555555000n, at(1, 16))), at(1, 16), /vma #1 .*below the previous vma's end 0x555555556000/);
  // out of order: vma #3 below vma #2
  await expectError(t, patched((b) => {
    b.writeBigUInt64LE(0x1000n, at(3, 16));
    b.writeBigUInt64LE(0x2000n, at(3, 24));
  }), at(3, 16), /vma #3 0x1000-0x2000: starts below/);
  await expectError(t, patched((b) => b.writeUInt32LE(0x8, at(0, 0))), at(0, 0), /vma #0 .*unknown prot bits 0x8/);
  await expectError(t, patched((b) => b.writeUInt32LE(MAP_SHARED | MAP_PRIVATE, at(0, 4))), at(0, 4), /exactly one of MAP_SHARED and MAP_PRIVATE/);
  await expectError(t, patched((b) => b.writeUInt32LE(0x100, at(0, 4))), at(0, 4), /unknown flag bits 0x100/);
  await expectError(t, patched((b) => b.writeUInt32LE(1, at(2, 8))), at(2, 8), /pad is 0x1, expected 0/);
  await expectError(t, patched((b) => b.writeUInt32LE(3, at(2, 12))), at(2, 12), /fd is 3, expected 0/);
  // no terminator: the list runs into the end of the file
  const noTerminator = buildImage().subarray(0, at(4, 0) + 12);
  await expectError(t, noTerminator, at(4, 0), /image ends inside the vma list before its zero record \(expected 40 bytes, got 12\)/);
});

test('errors: more VMA records than any process has are refused where the first too many is, before they exhaust memory', async (t) => {
  const max = maxImageVmas();
  const records = Buffer.alloc((max + 1) * VMA_SIZE);
  for (let i = 0; i <= max; i++) {
    const at = i * VMA_SIZE;
    records.writeUInt32LE(3, at); // PROT_READ | PROT_WRITE
    records.writeUInt32LE(MAP_ANONYMOUS | MAP_PRIVATE, at + 4);
    records.writeBigUInt64LE(BigInt(0x10000000 + i * 2 * PAGE), at + 16);
    records.writeBigUInt64LE(BigInt(0x10000000 + i * 2 * PAGE + PAGE), at + 24);
  }
  const image = Buffer.concat([encodeHeader(), encodeRegs(REGS, []), encodeMm(MM), records, VMA_TERMINATOR, Buffer.alloc(TRAILER_SIZE)]);
  await expectError(t, image, VMAS_AT + max * VMA_SIZE, new RegExp(`more than ${max} VMAs: no process has that many \\(vm\\.max_map_count\\)$`));
});

test('errors: page records', async (t) => {
  const first = pagesAt(VMAS.length);
  const record = (i: number) => first + i * PAGE_RECORD_SIZE;
  const withPages = (pages: number[]) => buildImage(VMAS, pages);
  await expectError(t, withPages([0x555555554000, 0x555555557000]), record(1), /^byte \d+: page record 0x555555557000 is not inside any VMA$/);
  await expectError(t, withPages([0x1000]), record(0), /page record 0x1000 is not inside any VMA/);
  await expectError(t, withPages([0x7fff00000000]), record(0), /page record 0x7fff00000000 is not inside any VMA/);
  await expectError(t, withPages([0x555555559000, 0x555555554000]), record(1), /page record 0x555555554000 is not above the previous one 0x555555559000/);
  await expectError(t, withPages([0x555555559000, 0x555555559000]), record(1), /not above the previous one/);
  await expectError(t, withPages([0x555555559010]), record(0), /page record 0x555555559010 is not page-aligned/);
  // A shared VMA's pages travel in the extension's SHARED_PAGES records, never as v0 page records.
  await expectError(t, withPages([0x7f0000001000]), record(0), /^byte \d+: page record 0x7f0000001000 lies in the shared VMA 0x7f0000000000-0x7f0000010000: v0 page records are private pages only$/);

  const image = buildImage();
  await expectError(t, image.subarray(0, record(2) + 100), record(2), /^byte \d+: image ends inside a page record \(expected 4104 bytes, got 100\)$/);
  await expectError(t, image.subarray(0, record(2) + 3), record(2), /image ends before the terminator \(expected a page record or 8 zero bytes, got 3 bytes\)/);
  await expectError(t, image.subarray(0, record(5)), record(5), /image ends before the terminator .*got 0 bytes/);
  await expectError(t, image.subarray(0, image.length - 1), record(5), /got 7 bytes/);
});

test('formatImage shows registers, mm, a maps-like VMA table and totals', async (t) => {
  const text = formatImage(await readImage([buildImage()]));
  t.regex(text, /magic 0xa75b8d43, version 0x100/);
  t.regex(text, /ip 0x0000555555555123/);
  t.regex(text, /cs USER64_CS {2}ss USER64_DS {2}ds NULL {2}es NULL/);
  t.regex(text, /fs base 0x00007f0000001740/);
  t.regex(text, /tls\[0\] 0x0000000000000000/);
  t.regex(text, /brk +0x555555559000-0x55555557a000/);
  t.regex(text, /555555559000-55555557a000 rw-p anon 00000000 +3\n/);
  t.regex(text, /7f0000000000-7f0000010000 rw-s file 00000000 +0\n/);
  t.regex(text, /5 pages dumped/);
  t.regex(text, /extension: none/);
});

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => { out.push(s); }, err: (s: string) => { err.push(s); } } };
}

test('showMain prints the image, and JSON with bigints as hex strings', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgfs-show-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'task.img');
  writeFileSync(file, buildImage());

  const text = capture();
  t.is(await showMain([file], text.io), 0);
  t.deepEqual(text.err, []);
  t.regex(text.out.join(''), /vmas \(4\)/);

  const json = capture();
  t.is(await showMain([file, '--json'], json.io), 0);
  const parsed = JSON.parse(json.out.join(''));
  t.is(parsed.regs.ip, '0x555555555123');
  t.is(parsed.vmas[1].start, '0x555555559000');
  t.is(parsed.vmas[1].pages, 3);
  t.is(parsed.pageCount, 5);
});

test('showMain on a truncated or missing file: exit 1, one stderr line, no stack', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgfs-show-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'cut.img');
  const image = buildImage();
  const cutAt = pagesAt(VMAS.length) + PAGE_RECORD_SIZE + 100;
  writeFileSync(file, image.subarray(0, cutAt));

  const cut = capture();
  t.is(await showMain([file], cut.io), 1);
  t.deepEqual(cut.out, []);
  t.deepEqual(cut.err, [
    `imgfs show: ${file}: byte ${cutAt - 100}: image ends inside a page record (expected 4104 bytes, got 100)\n`,
  ]);

  const missing = capture();
  t.is(await showMain([join(dir, 'nope.img')], missing.io), 1);
  t.is(missing.err.length, 1);
  t.regex(missing.err[0], /^imgfs show: .*nope\.img: ENOENT: no such file or directory\n$/);

  // After `--`, a word that begins with '-' is an image.
  const dashed = capture();
  t.is(await showMain(['--', '-nope.img'], dashed.io), 1);
  t.deepEqual(dashed.err, ['imgfs show: -nope.img: ENOENT: no such file or directory\n']);

  for (const [args, problem] of [[[], 'no image given (a file, or - for standard input)'], [['a.img', '--bogus'], "unknown option '--bogus'"], [['a.img', 'b.img'], 'one image at a time, not 2']] as const) {
    const usage = capture();
    t.is(await showMain([...args], usage.io), 2);
    t.deepEqual(usage.err, [`imgfs show: ${problem} (imgfs show --help)\n`]);
  }
});

test('imgfs show - on a terminal or a directory: one line saying so, exit 1, instead of waiting or reading nothing', async (t) => {
  const cli = join(import.meta.dirname, '..', 'bin', 'imgfs');
  // script(1) runs it with a pty as its standard input, and exits with its status.
  const onTerminal = await run('script', ['-qec', `${cli} show -`, '/dev/null'], { timeoutMs: 30_000 });
  t.is(onTerminal.code, 1, onTerminal.stdout);
  t.is(onTerminal.stdout.replace(/\r\n/g, '\n'), 'imgfs show: -: standard input is a terminal, not an image: pipe one in (cat task.img | imgfs show -) or name its file\n');
  const onDirectory = await run('bash', ['-c', '"$0" show - < /tmp', cli]);
  t.is(onDirectory.code, 1);
  t.is(onDirectory.stderr, 'imgfs show: -: standard input is a directory, not an image (EISDIR)\n');
});

test('imgfs show piped into a reader that stops early (| head -1): exit 0, nothing on stderr', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgfs-show-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'task.img');
  // 4000 VMAs: the text is longer than a pipe holds, so show still writes after head has gone.
  const many = Array.from({ length: 4000 }, (_, i) => vma(0x7f0000000000 + i * 2 * PAGE, 0x7f0000000000 + (i * 2 + 1) * PAGE));
  writeFileSync(file, buildImage(many, []));
  const cli = join(import.meta.dirname, '..', 'bin', 'imgfs');
  const { code, stdout, stderr } = await run('bash', ['-o', 'pipefail', '-c', `"$0" show --json "$1" | head -1`, cli, file]);
  t.is(stderr, '');
  t.is(code, 0);
  t.is(stdout, '{\n');
});

test('a file call failing with ENOTCONN (a FUSE mount whose server is gone) is said in the kernel\'s words, not Node\'s for sockets', (t) => {
  const stale = Object.assign(new Error("ENOTCONN: socket is not connected, open '/mnt/img/1/dump'"), { code: 'ENOTCONN', syscall: 'open' });
  t.is(fileErrorMessage(stale), 'ENOTCONN: transport endpoint is not connected (a FUSE mount whose server is gone)');
  const missing = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: 'ENOENT', syscall: 'open' });
  t.is(fileErrorMessage(missing), 'ENOENT: no such file or directory');
  t.is(fileErrorMessage(new Error('not a file call')), undefined);
});
