// The pure parts of the restore: the streaming reader's page batches whatever the chunking, and
// the registers of a v0 image turned back into what PTRACE_SETREGS takes.

import test from 'ava';
import {
  HEADER_SIZE, MM_SIZE, PAGE_RECORD_SIZE, REGS_SIZE, VMA_SIZE, VMA_TERMINATOR, encodeHeader, encodeMm, encodeRegs, encodeTls, encodeVma,
} from '../src/format.js';
import { ImageReader } from '../src/imagestream.js';
import type { UserDesc, UserRegs, Vma } from '../src/model.js';
import { NativeError } from '../src/ptrace/errors.js';
import type { RemoteTask } from '../src/ptrace/remote.js';
import { programModesOn } from '../src/ptrace/terminal.js';
import { Userfault } from '../src/ptrace/userfault.js';
import { decodeTls, registersFromV0 } from '../src/restore/regs.js';
import { fitXstate } from '../src/restore/xstate.js';
import { decodeRegs } from '../src/format.js';
import { prng } from './helpers/prng.js';
import { batchPage, imageStream } from './helpers/stream.js';

const PAGE = 4096;
/** Header, registers, mm, three VMA records and the zero one. */
const firstRecordAt = HEADER_SIZE + REGS_SIZE + MM_SIZE + 4 * VMA_SIZE;

function vma(start: number, pages: number): Vma {
  return {
    start, end: start + pages * PAGE, read: true, write: true, exec: false, mayShare: false, offset: 0,
    dev: '00:00', inode: 0, name: '', vmFlags: new Set(),
  };
}

const regs: UserRegs = {
  r15: 15n, r14: 14n, r13: 13n, r12: 12n, rbp: 0x7ffd0000f000n, rbx: 3n, r11: 0x246n, r10: 10n, r9: 9n, r8: 8n,
  rax: -516n, rcx: 0x7f0000001234n, rdx: 2n, rsi: 1n, rdi: 0n, orig_rax: 35n, rip: 0x555555555123n, cs: 0x33n,
  eflags: 0x246n, rsp: 0x7ffd0000e000n, ss: 0x2bn, fs_base: 0x7f0000002740n, gs_base: 0n, ds: 0n, es: 0n, fs: 0n, gs: 0n,
};

const tls: UserDesc[] = [
  { entryNumber: 12, baseAddr: 0x12345678, limit: 0xfffff, seg32bit: true, contents: 0, readExecOnly: false, limitInPages: true, segNotPresent: false, useable: true },
  { entryNumber: 13, baseAddr: 0, limit: 0, seg32bit: false, contents: 0, readExecOnly: true, limitInPages: false, segNotPresent: true, useable: false },
  { entryNumber: 14, baseAddr: 0xdead0000, limit: 0x1234, seg32bit: false, contents: 2, readExecOnly: true, limitInPages: false, segNotPresent: false, useable: false },
];

/** Three VMAs and pages in runs, page i filled with byte i + 1 after its address word. */
function image(): { bytes: Buffer; vaddrs: number[] } {
  const vmas = [vma(0x400000, 4), vma(0x600000, 8), vma(0x7ffd00000000, 16)];
  const vaddrs = [0x400000, 0x401000, 0x403000, 0x600000, 0x601000, 0x602000, 0x607000, 0x7ffd00000000, 0x7ffd0000f000];
  const records = vaddrs.map((vaddr, i) => {
    const record = Buffer.alloc(PAGE_RECORD_SIZE, i + 1);
    record.writeBigUInt64LE(BigInt(vaddr));
    return record;
  });
  const mm = {
    flags: 0n, defFlags: 0n, startCode: 0x400000, endCode: 0x401000, startData: 0x600000, endData: 0x600100,
    startBrk: 0x601000, brk: 0x604000, startStack: 0x7ffd0000eff0, argStart: 0x7ffd0000f000, argEnd: 0x7ffd0000f010,
    envStart: 0x7ffd0000f010, envEnd: 0x7ffd0000f100,
  };
  const bytes = Buffer.concat([encodeHeader(), encodeRegs(regs, tls), encodeMm(mm), ...vmas.map(encodeVma), VMA_TERMINATOR, ...records, Buffer.alloc(8)]);
  if (bytes.length - 8 - records.length * PAGE_RECORD_SIZE !== firstRecordAt) throw new Error('the test image changed: fix firstRecordAt');
  return { bytes, vaddrs };
}

test('page batches carry every record exactly once, whatever the chunk sizes and scatter reads', async (t) => {
  const { bytes, vaddrs } = image();
  const random = prng(7);
  const chunkings: [string, () => number][] = [
    ['1 byte', () => 1], ['7 bytes', () => 7], ['one record', () => PAGE_RECORD_SIZE], ['a record and 1', () => PAGE_RECORD_SIZE + 1],
    ['random', () => Math.floor(random() * 3 * PAGE_RECORD_SIZE)], ['whole', () => bytes.length],
  ];
  const scatterings: [string, ((whole: number) => number) | null][] = [
    ['no scatter', null], ['whole scatter reads', (whole) => whole],
    ['scatter reads cut anywhere', (whole) => Math.floor(random() * (whole + 1))], ['scatter reads of 9 bytes', () => 9],
  ];
  for (const [chunking, sizes] of chunkings) {
    for (const [scattering, lengths] of scatterings) {
      const name = `${chunking}, ${scattering}`;
      const stream = imageStream(bytes, sizes, lengths ?? undefined);
      const reader = new ImageReader(stream.chunks, lengths ? stream.scatter : undefined);
      const head = await reader.readHead();
      t.is(head.vmas.length, 3, name);
      const seen: number[] = [];
      const indexes: number[] = [];
      for (let batch = await reader.nextPages(); batch; batch = await reader.nextPages()) {
        for (let i = 0; i < batch.count; i++) {
          const k = seen.length;
          t.true(batchPage(batch, i).equals(Buffer.alloc(PAGE, k + 1)), `${name}: page ${k}`);
          t.is(batch.offset + i * PAGE_RECORD_SIZE, firstRecordAt + k * PAGE_RECORD_SIZE, `${name}: offset`);
          seen.push(batch.vaddrs[i]);
          indexes.push(batch.vmaIndexes[i]);
        }
      }
      t.deepEqual(seen, vaddrs, name);
      t.deepEqual(indexes, [0, 0, 0, 1, 1, 1, 1, 2, 2], name);
      t.is(await reader.readExtension(), undefined, name);
      t.is(reader.offset, bytes.length, name);
    }
  }
});

test('decodeTls undoes encodeTls', (t) => {
  for (const desc of tls) {
    const word = encodeTls(desc);
    if (word === 0n) continue;
    t.deepEqual(decodeTls(word, desc.entryNumber), desc);
  }
  const empty = decodeTls(0n, 13);
  t.true(empty.readExecOnly && empty.segNotPresent && empty.baseAddr === 0, 'an unused entry clears it');
});

test('the v0 registers turn back into user_regs_struct', (t) => {
  const { regs: back, tls: entries } = registersFromV0(decodeRegs(encodeRegs(regs, tls)));
  t.deepEqual({ ...back, rax: BigInt.asIntN(64, back.rax) }, regs);
  t.deepEqual(entries.map((e) => e.baseAddr), [0x12345678, 0, 0xdead0000]);
});

test('a stub whose kernel refuses a userfaultfd gets none (its pages are then written another way); a stub that is gone is an error', (t) => {
  const refusing = (errno: number, code: string) => ({
    tid: 4242,
    userfaultfd(): number {
      throw new NativeError(errno, 'userfaultfd(02000000) in pid 4242', code);
    },
  }) as unknown as RemoteTask;
  t.is(Userfault.open(refusing(1, 'EPERM')), null, 'EPERM: a seccomp filter or vm.unprivileged_userfaultfd');
  t.is(Userfault.open(refusing(38, 'ENOSYS')), null, 'ENOSYS: a kernel without it');
  t.throws(() => Userfault.open(refusing(3, 'ESRCH')), { instanceOf: NativeError, message: /ESRCH/ });
});

test('fitXstate: an area of this CPU\'s layout as it is; another layout keeps x87, SSE and AVX and resets the rest', (t) => {
  // This CPU: x87|SSE|AVX|PKRU in 840 bytes. The other: x87|SSE|AVX|opmask|ZMM in 2696 bytes.
  const area = (size: number, xcr0: bigint, xstateBv: bigint, fill: number) => {
    const b = Buffer.alloc(size, fill);
    b.writeBigUInt64LE(xcr0, 464);
    b.fill(0, 512, 576);
    b.writeBigUInt64LE(xstateBv, 512);
    return b;
  };
  const local = area(840, 0x207n, 0x3n, 0);
  const same = area(840, 0x207n, 0x207n, 7);
  t.deepEqual(fitXstate(same, local), { xstate: same, dropped: 0n });

  const foreign = area(2696, 0xe7n, 0xe7n, 9);
  const { xstate, dropped } = fitXstate(foreign, local);
  t.is(dropped, 0xe0n);
  t.is(xstate.length, 840);
  t.deepEqual(xstate.subarray(0, 464), foreign.subarray(0, 464), 'x87 and SSE');
  t.deepEqual(xstate.subarray(464, 512), local.subarray(464, 512), 'this CPU\'s software-reserved bytes');
  t.is(xstate.readBigUInt64LE(512), 0x7n, 'xstate_bv: x87, SSE, AVX');
  t.deepEqual(xstate.subarray(520, 576), Buffer.alloc(56), 'xcomp_bv and the rest of the header zero');
  t.deepEqual(xstate.subarray(576, 832), foreign.subarray(576, 832), 'AVX upper halves');
  t.deepEqual(xstate.subarray(832), Buffer.alloc(8), 'PKRU in its initial state');

  // A CPU without AVX here: only x87 and SSE are kept.
  const { xstate: noAvx, dropped: droppedNoAvx } = fitXstate(foreign, area(576, 0x3n, 0x3n, 0));
  t.is(noAvx.length, 576);
  t.is(noAvx.readBigUInt64LE(512), 0x3n);
  t.is(droppedNoAvx, 0xe4n);
  // Not an XSAVE area at all: left for ptrace to judge.
  const short = Buffer.alloc(100, 1);
  t.deepEqual(fitXstate(short, local), { xstate: short, dropped: 0n });
});

test('programModesOn: the program\'s input, output and local modes and control characters, the terminal\'s c_cflag and line discipline', (t) => {
  const terminal = Buffer.alloc(36, 0x11);
  terminal.writeUInt32LE(0o10275, 8); // B38400 | CS8 | CREAD | HUPCL
  terminal[16] = 0; // N_TTY
  const program = Buffer.alloc(36, 0x22);
  program.writeUInt32LE(0o1, 12); // c_lflag: ISIG alone (no ICANON, no ECHO)
  program.writeUInt32LE(0o15, 8); // B9600 of the serial line it ran on
  program[16] = 2; // another line discipline
  const modes = programModesOn(terminal, program);
  t.deepEqual([0, 4, 12].map((at) => modes.readUInt32LE(at)), [0x22222222, 0x22222222, 0o1], 'c_iflag, c_oflag, c_lflag: the program\'s');
  t.is(modes.readUInt32LE(8), 0o10275, 'c_cflag: the terminal\'s');
  t.is(modes[16], 0, 'c_line: the terminal\'s');
  t.deepEqual(modes.subarray(17), program.subarray(17), 'c_cc: the program\'s');
  t.is(program.readUInt32LE(8), 0o15, 'the image\'s bytes are left as they were');
});
