// `imgfs show`: reads a binfmt_img v0 image and its extension front to back in bounded memory,
// checks every structural rule of the format, and prints it for people or (--json) for machines.

import { createReadStream } from 'node:fs';
import {
  CKPT_TLS_ENTRIES, FormatError, HEADER_SIZE, IMG_MAGIC, IMG_VERSION_0, MAP_ANONYMOUS, MAP_PRIVATE,
  MAP_SHARED, MM_SIZE, PAGE_RECORD_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, REGS_OFFSETS, REGS_SIZE,
  TRAILER_SIZE, VMA_OFFSETS, VMA_SIZE, decodeHeader, decodeMm, decodeRegs, decodeSegment, decodeVma,
} from './format.js';
import type { DecodedHeader, DecodedMm, DecodedRegs, DecodedVma } from './format.js';
import {
  EXTENSION_HEADER_SIZE, ExtensionFormatError, decodeExtension, decodeExtensionHeader,
} from './extension.js';
import type { ImageExtension } from './extension-model.js';
import { PAGE_SIZE } from './model.js';

/** A path, an open file descriptor (left open), or the image's bytes as a sequence of chunks. */
export type ImageSource = string | number | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface ImageSummary {
  header: DecodedHeader;
  regs: DecodedRegs;
  mm: DecodedMm;
  vmas: (DecodedVma & { pages: number })[];
  pageCount: number;
  /** Bytes in the whole source, extension included. */
  size: number;
  /** The extension after the trailer, when the image has one. */
  extension?: ShownExtension;
}

export interface ShownExtension {
  /** Image offset of its header. */
  offset: number;
  length: number;
  version: number;
  content: ImageExtension;
}

/** A structural problem in an image, at a byte offset of the image. */
export class ImageFormatError extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(`byte ${offset}: ${message}`);
    this.name = 'ImageFormatError';
    this.offset = offset;
  }
}

const READ_CHUNK = 1 << 20;
const PAGE = BigInt(PAGE_SIZE);
const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** Sequential reader over chunks that keeps at most one chunk plus one record in memory. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private done = false;
  /** Image offset of the next unread byte. */
  offset = 0;

  constructor(private readonly chunks: AsyncIterator<Uint8Array> | Iterator<Uint8Array>) {}

  /** Buffers up to n bytes; returns how many are available (fewer only at end of input). */
  async fill(n: number): Promise<number> {
    while (this.buf.length - this.pos < n && !this.done) {
      const next = await this.chunks.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      this.buf = this.pos === this.buf.length ? chunk : Buffer.concat([this.buf.subarray(this.pos), chunk]);
      this.pos = 0;
    }
    return Math.min(n, this.buf.length - this.pos);
  }

  /** The next n bytes, which fill() must have made available. */
  take(n: number): Buffer {
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }

  /** Consumes the rest of the input; returns how many bytes that was. */
  async drain(): Promise<number> {
    let count = this.buf.length - this.pos;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    while (!this.done) {
      const next = await this.chunks.next();
      if (next.done) this.done = true;
      else count += next.value.byteLength;
    }
    this.offset += count;
    return count;
  }
}

function openChunks(source: ImageSource): AsyncIterator<Uint8Array> | Iterator<Uint8Array> {
  if (typeof source === 'string' || typeof source === 'number') {
    const stream = typeof source === 'string'
      ? createReadStream(source, { highWaterMark: READ_CHUNK })
      : createReadStream('', { fd: source, autoClose: false, highWaterMark: READ_CHUNK });
    return stream[Symbol.asyncIterator]();
  }
  if (Symbol.asyncIterator in source) return source[Symbol.asyncIterator]();
  return source[Symbol.iterator]();
}

async function readStruct(reader: ByteReader, size: number, what: string): Promise<Buffer> {
  const got = await reader.fill(size);
  if (got < size) {
    throw new ImageFormatError(reader.offset, `image ends inside the ${what} (expected ${size} bytes, got ${got})`);
  }
  return reader.take(size);
}

function checkHeader(header: DecodedHeader): void {
  if (header.magic !== IMG_MAGIC) {
    throw new ImageFormatError(0, `bad magic ${hex(header.magic)}, expected ${hex(IMG_MAGIC)}`);
  }
  if (header.version !== IMG_VERSION_0) {
    throw new ImageFormatError(4, `unsupported version ${hex(header.version)}, expected ${hex(IMG_VERSION_0)}`);
  }
}

const SEGMENT_FIELDS = ['gsindex', 'fsindex', 'cs', 'ss', 'ds', 'es'] as const;

function checkRegs(regs: DecodedRegs, at: number): void {
  for (const field of SEGMENT_FIELDS) {
    try {
      decodeSegment(regs[field]);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      throw new ImageFormatError(at + REGS_OFFSETS[field], `${field}: ${err.message}`);
    }
  }
}

const KNOWN_PROT = PROT_READ | PROT_WRITE | PROT_EXEC;
const KNOWN_MAP = MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS;

function checkVma(vma: DecodedVma, index: number, at: number, previousEnd: bigint): void {
  const fail = (field: keyof typeof VMA_OFFSETS, message: string): never => {
    throw new ImageFormatError(at + VMA_OFFSETS[field], `vma #${index} ${hex(vma.start)}-${hex(vma.end)}: ${message}`);
  };
  if (vma.prot & ~KNOWN_PROT) fail('prot', `unknown prot bits ${hex(vma.prot)}`);
  if (vma.flags & ~KNOWN_MAP) fail('flags', `unknown flag bits ${hex(vma.flags)}`);
  if (((vma.flags & MAP_SHARED) !== 0) === ((vma.flags & MAP_PRIVATE) !== 0)) {
    fail('flags', `flags ${hex(vma.flags)} must hold exactly one of MAP_SHARED and MAP_PRIVATE`);
  }
  if (vma.pad !== 0) fail('pad', `pad is ${hex(vma.pad)}, expected 0`);
  if (vma.fd !== 0) fail('fd', `fd is ${vma.fd}, expected 0 in v0`);
  if (vma.start % PAGE !== 0n) fail('start', 'start is not page-aligned');
  if (vma.end % PAGE !== 0n) fail('end', 'end is not page-aligned');
  if (vma.start >= vma.end) fail('end', 'end is not above start');
  if (vma.start < previousEnd) fail('start', `starts below the previous vma's end ${hex(previousEnd)}`);
}

async function readVmas(reader: ByteReader): Promise<DecodedVma[]> {
  const vmas: DecodedVma[] = [];
  for (;;) {
    const at = reader.offset;
    const record = await readStruct(reader, VMA_SIZE, 'vma list before its zero record');
    if (record.every((b) => b === 0)) return vmas;
    const vma = decodeVma(record);
    checkVma(vma, vmas.length, at, vmas.length > 0 ? vmas[vmas.length - 1].end : 0n);
    vmas.push(vma);
  }
}

/** Reads the page records and the trailer; returns the page count per VMA. */
async function readPages(reader: ByteReader, vmas: readonly DecodedVma[]): Promise<number[]> {
  const counts = vmas.map(() => 0);
  let vmaIndex = 0;
  let previous = -1n;
  for (;;) {
    const at = reader.offset;
    const got = await reader.fill(PAGE_RECORD_SIZE);
    if (got < TRAILER_SIZE) {
      throw new ImageFormatError(at, `image ends before the terminator (expected a page record or ${TRAILER_SIZE} zero bytes, got ${got} bytes)`);
    }
    const vaddr = reader.take(TRAILER_SIZE).readBigUInt64LE(0);
    if (vaddr === 0n) return counts;
    if (vaddr % PAGE !== 0n) throw new ImageFormatError(at, `page record ${hex(vaddr)} is not page-aligned`);
    if (vaddr <= previous) {
      throw new ImageFormatError(at, `page record ${hex(vaddr)} is not above the previous one ${hex(previous)}`);
    }
    while (vmaIndex < vmas.length && vmas[vmaIndex].end <= vaddr) vmaIndex++;
    if (vmaIndex === vmas.length || vaddr < vmas[vmaIndex].start) {
      throw new ImageFormatError(at, `page record ${hex(vaddr)} is not inside any VMA`);
    }
    if (got < PAGE_RECORD_SIZE) {
      throw new ImageFormatError(at, `image ends inside a page record (expected ${PAGE_RECORD_SIZE} bytes, got ${got})`);
    }
    reader.take(PAGE_SIZE);
    counts[vmaIndex]++;
    previous = vaddr;
  }
}

/** The extension after the trailer, if any bytes follow it; nothing may follow the extension. */
async function readExtension(reader: ByteReader): Promise<ShownExtension | undefined> {
  const offset = reader.offset;
  const got = await reader.fill(EXTENSION_HEADER_SIZE);
  if (got === 0) return undefined;
  try {
    const header = reader.take(got);
    const { version, length } = decodeExtensionHeader(header, offset);
    const body = reader.take(await reader.fill(length - EXTENSION_HEADER_SIZE));
    const content = decodeExtension(Buffer.concat([header, body]), offset);
    const after = reader.offset;
    const extra = await reader.drain();
    if (extra > 0) throw new ImageFormatError(after, `${extra} bytes follow the extension's end`);
    return { offset, length, version, content };
  } catch (err) {
    if (err instanceof ExtensionFormatError) throw new ImageFormatError(err.offset, err.problem);
    throw err;
  }
}

/** Parses and checks a whole image; throws ImageFormatError at the first structural problem. */
export async function readImage(source: ImageSource): Promise<ImageSummary> {
  const chunks = openChunks(source);
  try {
    const reader = new ByteReader(chunks);
    const header = decodeHeader(await readStruct(reader, HEADER_SIZE, 'header'));
    checkHeader(header);
    const regsAt = reader.offset;
    const regs = decodeRegs(await readStruct(reader, REGS_SIZE, 'registers'));
    checkRegs(regs, regsAt);
    const mm = decodeMm(await readStruct(reader, MM_SIZE, 'mm record'));
    const vmas = await readVmas(reader);
    const pages = await readPages(reader, vmas);
    const extension = await readExtension(reader);
    return {
      header,
      regs,
      mm,
      vmas: vmas.map((vma, i) => ({ ...vma, pages: pages[i] })),
      pageCount: pages.reduce((a, b) => a + b, 0),
      size: reader.offset,
      ...(extension ? { extension } : {}),
    };
  } finally {
    // Stops and closes a file stream we opened when parsing ends early.
    await chunks.return?.();
  }
}

const word = (v: bigint): string => `0x${v.toString(16).padStart(16, '0')}`;

function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatRegs(regs: DecodedRegs): string[] {
  const rows = [
    ['ip', 'sp', 'bp', 'flags'],
    ['ax', 'bx', 'cx', 'dx'],
    ['si', 'di', 'orig_ax', 'r8'],
    ['r9', 'r10', 'r11', 'r12'],
    ['r13', 'r14', 'r15'],
  ] as const;
  const lines = rows.map((row) => '  ' + row.map((name) => `${name.padStart(7)} ${word(regs[name])}`).join('  '));
  lines.push('  ' + SEGMENT_FIELDS.map((name) => `${name} ${decodeSegment(regs[name])}`).join('  '));
  lines.push(`  fs base ${word(regs.fs)}  gs base ${word(regs.gs)}`);
  for (let i = 0; i < CKPT_TLS_ENTRIES; i++) lines.push(`  tls[${i}] ${word(regs.tls[i])}`);
  return lines;
}

function formatMm(mm: DecodedMm): string[] {
  return [
    `  flags ${hex(mm.flags)}  def_flags ${hex(mm.defFlags)}  exe_fd ${mm.exeFd}`,
    `  code  ${hex(mm.startCode)}-${hex(mm.endCode)}`,
    `  data  ${hex(mm.startData)}-${hex(mm.endData)}`,
    `  brk   ${hex(mm.startBrk)}-${hex(mm.brk)}`,
    `  stack ${hex(mm.startStack)}`,
    `  args  ${hex(mm.argStart)}-${hex(mm.argEnd)}`,
    `  env   ${hex(mm.envStart)}-${hex(mm.envEnd)}`,
  ];
}

function formatVma(vma: DecodedVma & { pages: number }): string {
  const perms = (vma.prot & PROT_READ ? 'r' : '-') + (vma.prot & PROT_WRITE ? 'w' : '-') +
    (vma.prot & PROT_EXEC ? 'x' : '-') + (vma.flags & MAP_SHARED ? 's' : 'p');
  const backing = vma.flags & MAP_ANONYMOUS ? 'anon' : 'file';
  const range = `${vma.start.toString(16).padStart(12, '0')}-${vma.end.toString(16).padStart(12, '0')}`;
  return `  ${range} ${perms} ${backing} ${vma.pgoff.toString(16).padStart(8, '0')} ${String(vma.pages).padStart(9)}`;
}

/** The image the way a person reads it. */
export function formatImage(summary: ImageSummary): string {
  const { header, regs, mm, vmas, pageCount, size, extension } = summary;
  const mappedPages = vmas.reduce((sum, v) => sum + Number((v.end - v.start) / PAGE), 0);
  return [
    `binfmt_img image: magic ${hex(header.magic)}, version ${hex(header.version)} (v0), ${size} bytes`,
    '',
    'registers',
    ...formatRegs(regs),
    '',
    'mm',
    ...formatMm(mm),
    '',
    `vmas (${vmas.length})`,
    `  ${'start-end'.padEnd(25)} perm kind ${'pgoff'.padEnd(8)} ${'pages'.padStart(9)}`,
    ...vmas.map(formatVma),
    '',
    `total: ${vmas.length} vmas mapping ${mappedPages} pages, ${pageCount} pages dumped (${formatBytes(pageCount * PAGE_SIZE)})`,
    ...(extension ? formatExtension(extension) : ['extension: none']),
    '',
  ].join('\n');
}

const SIGNAL_NAMES = [
  'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM',
  'TERM', 'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF',
  'WINCH', 'IO', 'PWR', 'SYS',
];
const signalName = (signal: number): string => `SIG${SIGNAL_NAMES[signal - 1] ?? signal}`;
const SIG_IGN = 1n;
const SA_FLAGS: readonly [bigint, string][] = [
  [0x1n, 'SA_NOCLDSTOP'], [0x2n, 'SA_NOCLDWAIT'], [0x4n, 'SA_SIGINFO'], [0x0400_0000n, 'SA_RESTORER'],
  [0x0800_0000n, 'SA_ONSTACK'], [0x1000_0000n, 'SA_RESTART'], [0x4000_0000n, 'SA_NODEFER'], [0x8000_0000n, 'SA_RESETHAND'],
];

function saFlags(flags: bigint): string {
  const names = SA_FLAGS.filter(([bit]) => flags & bit).map(([, name]) => name);
  const rest = SA_FLAGS.reduce((left, [bit]) => left & ~bit, flags);
  if (rest !== 0n) names.push(hex(rest));
  return names.length > 0 ? names.join('|') : '0';
}

/** glibc's dev_t encoding, as maps prints it: major:minor in hex. */
function deviceName(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

const NS_PER_MS = 1_000_000n;
const MAX_DATE_MS = 8_640_000_000_000_000n;

function mtimeText(ns: bigint): string {
  const ms = ns / NS_PER_MS;
  if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) return `${ns}ns`;
  return new Date(Number(ms)).toISOString().replace('.000Z', 'Z');
}

function formatExtension({ offset, length, version, content: ext }: ShownExtension): string[] {
  const range = (start: number, end: number) => `${start.toString(16).padStart(12, '0')}-${end.toString(16).padStart(12, '0')}`;
  const handled = ext.sigactions.map((a, i) => ({ ...a, signal: i + 1 })).filter((a) => a.handler !== 0n);
  return [
    `extension: version ${version}, ${length} bytes at byte ${offset}`,
    `  exe  ${ext.exe}`,
    `  cwd  ${ext.cwd}`,
    `  brk  ${hex(ext.brk)}`,
    `  auxv ${ext.auxv.length / 16} entries`,
    '',
    `threads (${ext.threads.length})`,
    ...ext.threads.map((t) => `  tid ${t.tid}  ip ${word(t.regs.rip)}  sp ${word(t.regs.rsp)}  fs_base ${word(t.regs.fs_base)}  ` +
      `sigmask ${hex(t.sigmask)}  xstate ${t.xstate.length} bytes`),
    '',
    `mapped files (${ext.files.length})`,
    ...ext.files.map((f) => `  ${range(f.start, f.end)} dev ${deviceName(f.dev)} inode ${f.inode} size ${f.size} ` +
      `mtime ${mtimeText(f.mtimeNs)} ${f.path}`),
    '',
    `signal dispositions other than SIG_DFL (${handled.length})`,
    ...handled.map((a) => `  ${signalName(a.signal).padEnd(10)} ${a.handler === SIG_IGN ? 'SIG_IGN' : `handler ${hex(a.handler)}`}` +
      `  flags ${saFlags(a.flags)}  mask ${hex(a.mask)}  restorer ${hex(a.restorer)}`),
    '',
    `open file descriptors (${ext.fds.length})`,
    ...ext.fds.map((f) => `  ${String(f.fd).padStart(4)} ${f.kind.padEnd(6)} flags 0${f.flags.toString(8).padStart(6, '0')} ` +
      `pos ${f.offset} ${f.target}`),
  ];
}

/** JSON for machines: bigints become "0x..." strings, byte buffers (auxv, FPU state) hex strings. */
export function imageToJson(summary: ImageSummary): string {
  return JSON.stringify(summary, function (this: Record<string, unknown>, key, value) {
    const raw = this[key];
    if (Buffer.isBuffer(raw)) return raw.toString('hex');
    return typeof value === 'bigint' ? hex(value) : value;
  }, 2) + '\n';
}

export interface ShowIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: ShowIo = {
  out: (text) => { process.stdout.write(text); },
  err: (text) => { process.stderr.write(text); },
};

const USAGE = 'usage: imgfs show <image|-> [--json]\n';

/** The message of a system call failing on the file, without Node's "syscall 'path'" suffix. */
function fileErrorMessage(err: unknown): string | undefined {
  if (!(err instanceof Error) || typeof (err as NodeJS.ErrnoException).syscall !== 'string') return undefined;
  return err.message.replace(/, \w+ '.*'$/, '');
}

/** `imgfs show <image> [--json]`; argv holds the arguments after "show". Returns the exit status. */
export async function showMain(argv: string[], io: ShowIo = processIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(USAGE);
    return 0;
  }
  const json = argv.includes('--json');
  const files = argv.filter((arg) => arg !== '--json');
  if (files.length !== 1 || (files[0].startsWith('-') && files[0] !== '-')) {
    io.err(USAGE);
    return 2;
  }
  const file = files[0];
  let summary: ImageSummary;
  try {
    summary = await readImage(file === '-' ? process.stdin : file);
  } catch (err) {
    const message = err instanceof ImageFormatError ? err.message : fileErrorMessage(err);
    if (message === undefined) throw err;
    io.err(`imgfs show: ${file}: ${message}\n`);
    return 1;
  }
  io.out(json ? imageToJson(summary) : formatImage(summary));
  return 0;
}
