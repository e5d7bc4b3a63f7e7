// Bad images fed to `imgfs restore`: truncated anywhere, wrong magic or version, broken VMA
// records, page records out of order, unaligned or outside every VMA, a corrupt extension. Every
// one must end with exit status 1 and one line naming the byte offset, and leave no process
// behind: in particular not the stub, which exists from the VMA list on (its name while it is
// being restored is restore-<restorer pid>). The same for broken SHARED_PAGES records (the contents
// of shared memory) in the image of a target that has them.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RecordType } from '../src/extension.js';
import { makeTempDir } from './helpers/files.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, parseImage, VMA_RECORD_SIZE, VMAS_OFFSET, type Image } from './helpers/image.js';
import { repoRoot } from './helpers/mount.js';
import { prng } from './helpers/prng.js';
import { dumpToFile, killOriginal, stubsOf } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const SEED = 0x5eed2011;
const RANDOM_TRUNCATIONS = 8;
const PARALLEL = 3;

interface Mutation {
  what: string;
  bytes: Buffer;
  /** Feed it on standard input instead of naming the file. */
  pipe?: boolean;
}

/** A copy of image with the u64 at offset replaced. */
function withU64(image: Buffer, offset: number, value: bigint): Buffer {
  const copy = Buffer.from(image);
  copy.writeBigUInt64LE(value, offset);
  return copy;
}

const vmaField = (index: number, field: number) => VMAS_OFFSET + index * VMA_RECORD_SIZE + field;
const pageVaddrAt = (parsed: Image, index: number) => parsed.pages[index].offset - 8;

/** Offsets of the extension's records, by type. */
function extensionRecords(image: Buffer, parsed: Image): Map<number, number[]> {
  const records = new Map<number, number[]>();
  for (let at = parsed.extension!.offset + 16; at < image.length;) {
    const type = image.readUInt32LE(at);
    records.set(type, [...(records.get(type) ?? []), at]);
    if (type === 0) break;
    at += 8 + Math.ceil(image.readUInt32LE(at + 4) / 8) * 8;
  }
  return records;
}

function mutations(image: Buffer): Mutation[] {
  const parsed = parseImage(image);
  const random = prng(SEED);
  const list: Mutation[] = [];
  const cut = (at: number, what: string) => list.push({ what: `truncated at ${at} (${what})`, bytes: image.subarray(0, at) });
  cut(0, 'empty');
  cut(5, 'header');
  cut(100, 'registers');
  cut(VMAS_OFFSET + 60, 'vma list');
  cut(pageVaddrAt(parsed, 0) + 4, 'first page record address');
  cut(parsed.pages[Math.floor(parsed.pages.length / 2)].offset + 1000, 'a page in the middle');
  cut(parsed.end - 3, 'terminator');
  cut(parsed.extension!.offset + 10, 'extension header');
  cut(image.length - 20, 'extension end');
  for (let i = 0; i < RANDOM_TRUNCATIONS; i++) {
    const at = Math.floor(random() * image.length);
    if (at !== parsed.end) cut(at, 'random');
  }
  const flipped = Buffer.from(image);
  flipped[0] ^= 0xff;
  list.push({ what: 'wrong magic', bytes: flipped });
  const version = Buffer.from(image);
  version.writeUInt32LE(0x200, 4);
  list.push({ what: 'wrong version', bytes: version });

  const last = parsed.vmas.length - 1;
  list.push({ what: 'unaligned vma start', bytes: withU64(image, vmaField(1, 16), BigInt(parsed.vmas[1].start + 8)) });
  list.push({ what: 'vma overlapping the previous one', bytes: withU64(image, vmaField(2, 16), BigInt(parsed.vmas[1].start)) });
  list.push({ what: 'empty vma', bytes: withU64(image, vmaField(3, 24), BigInt(parsed.vmas[3].start)) });
  list.push({ what: 'vma beyond user space', bytes: withU64(image, vmaField(last, 24), 0xffff_8000_0000_0000n) });
  const bothFlags = Buffer.from(image);
  bothFlags.writeUInt32LE(MAP_SHARED | MAP_PRIVATE, vmaField(0, 4));
  list.push({ what: 'vma both shared and private', bytes: bothFlags });

  // A private file VMA with dumped pages (the program's data): its file offset moved.
  const data = parsed.vmas.findIndex((v) => (v.flags & MAP_ANONYMOUS) === 0 && (v.flags & MAP_PRIVATE) !== 0 &&
    parsed.pages.some((p) => p.vaddr >= v.start && p.vaddr < v.end));
  list.push({ what: 'file vma whose dumped pages lie past the end of its file', bytes: withU64(image, vmaField(data, 32), 1n << 30n) });
  list.push({ what: 'file vma at an offset past any file', bytes: withU64(image, vmaField(data, 32), 0x7f00_0000_0000_0001n) });

  const middle = Math.floor(parsed.pages.length / 2);
  const [a, b] = [parsed.pages[middle], parsed.pages[middle + 1]];
  const swapped = withU64(withU64(image, pageVaddrAt(parsed, middle), BigInt(b.vaddr)), pageVaddrAt(parsed, middle + 1), BigInt(a.vaddr));
  list.push({ what: 'page records out of order', bytes: swapped });
  list.push({ what: 'page records out of order, from a pipe', bytes: swapped, pipe: true });
  list.push({ what: 'unaligned page record', bytes: withU64(image, pageVaddrAt(parsed, middle), BigInt(a.vaddr + 8)) });
  const gap = parsed.vmas.findIndex((v, i) => i > 0 && parsed.vmas[i - 1].end + PAGE_SIZE < v.start);
  const lastBefore = parsed.pages.filter((p) => p.vaddr < parsed.vmas[gap - 1].end).length - 1;
  list.push({
    what: 'page record outside every vma',
    bytes: withU64(image, pageVaddrAt(parsed, lastBefore), BigInt(parsed.vmas[gap - 1].end)),
  });
  list.push({ what: 'absurd page record address', bytes: withU64(image, pageVaddrAt(parsed, middle), 0xfff0_0000_0000_0000n) });

  const ext = parsed.extension!.offset;
  const badExtMagic = Buffer.from(image);
  badExtMagic[ext] ^= 0x55;
  list.push({ what: 'extension magic', bytes: badExtMagic });
  list.push({ what: 'absurd extension length', bytes: withU64(image, ext + 8, 1n << 40n) });
  list.push({ what: 'absurd extension length, from a pipe', bytes: withU64(image, ext + 8, 1n << 40n), pipe: true });
  const records = extensionRecords(image, parsed);
  const longRecord = Buffer.from(image);
  longRecord.writeUInt32LE(0xffff_fff0, records.get(5)![0] + 4); // the first THREAD's length
  list.push({ what: 'extension record running past its end', bytes: longRecord });
  // The first MAPPED_FILE record moved one page down: well-formed, but no VMA is there.
  const mappedFile = records.get(6)![0] + 8;
  const moved = [0, 8].reduce((bytes, field) => withU64(bytes, mappedFile + field, image.readBigUInt64LE(mappedFile + field) - BigInt(PAGE_SIZE)), image);
  list.push({ what: 'mapped file that matches no vma', bytes: moved });
  return list;
}

interface Outcome {
  code: number | null;
  stderr: string;
  leftovers: number[];
}

function restore(file: string, pipe: boolean): Promise<Outcome> {
  const args = ['--import=tsx', 'src/cli.ts', 'restore', pipe ? '-' : file];
  const proc = spawn(process.execPath, args, { cwd: repoRoot, stdio: [pipe ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  if (pipe) {
    proc.stdin!.on('error', () => undefined); // the restorer may stop reading early
    fsp.readFile(file).then((bytes) => proc.stdin!.end(bytes), () => proc.stdin!.end());
  }
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  return new Promise((resolve) => proc.on('close', (code) => resolve({ code, stderr, leftovers: stubsOf(proc.pid!) })));
}

/** Broken SHARED_PAGES records: each one's VMA, page records and length. */
function sharedPagesMutations(image: Buffer): Mutation[] {
  const parsed = parseImage(image);
  const shared = extensionRecords(image, parsed).get(RecordType.SHARED_PAGES)!;
  const withPages = shared.filter((at) => image.readUInt32LE(at + 24) >= 2);
  const [at] = withPages;
  const firstPage = at + 32;
  const secondPage = firstPage + 8 + PAGE_SIZE;
  const list: Mutation[] = [
    { what: 'shared pages out of order', bytes: withU64(image, secondPage, image.readBigUInt64LE(firstPage)) },
    { what: 'shared page outside its VMA', bytes: withU64(image, firstPage, image.readBigUInt64LE(at + 16)) },
    { what: 'shared pages of no VMA', bytes: withU64(image, at + 8, image.readBigUInt64LE(at + 8) - BigInt(PAGE_SIZE)) },
    { what: 'truncated inside a shared page', bytes: image.subarray(0, secondPage + 100) },
    { what: 'truncated inside a shared page, from a pipe', bytes: image.subarray(0, secondPage + 100), pipe: true },
  ];
  const count = Buffer.from(image);
  count.writeUInt32LE(image.readUInt32LE(at + 24) + 1, at + 24);
  list.push({ what: 'shared page count that does not match the length', bytes: count });
  return list;
}

/** Restores every case, PARALLEL at a time, and checks each failed cleanly. */
async function restoreAll(t: ExecutionContext, dir: string, cases: Mutation[]): Promise<void> {
  const outcomes: Outcome[] = new Array(cases.length);
  t.teardown(() => {
    for (const outcome of outcomes) for (const pid of outcome?.leftovers ?? []) process.kill(pid, 'SIGKILL');
  });
  let next = 0;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const file = path.join(dir, `case-${i}.img`);
      await fsp.writeFile(file, cases[i].bytes);
      outcomes[i] = await restore(file, cases[i].pipe ?? false);
    }
  }));
  cases.forEach(({ what }, i) => {
    const { code, stderr, leftovers } = outcomes[i];
    t.is(code, 1, `${what}: ${stderr}`);
    t.regex(stderr, /^imgfs restore: \S+: byte \d+: [^\n]+\n$/, what);
    t.deepEqual(leftovers, [], `${what}: the stub was left running`);
  });
}

test('every bad image: exit 1, one line naming the byte offset, and no process left behind', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line === 'tick 2');
  const dir = await makeTempDir(t, 'imgfs-restore-fuzz-');
  const image = await fsp.readFile(await dumpToFile(t, target, dir));
  await killOriginal(target);
  await restoreAll(t, dir, mutations(image));
});

test('every bad SHARED_PAGES record: exit 1, one line naming the byte offset, and no process left behind', async (t) => {
  const dir = await makeTempDir(t, 'imgfs-restore-fuzz-shared-');
  const target = await startTarget(t, 'restore_shm', [dir]);
  const image = await fsp.readFile(await dumpToFile(t, target, dir));
  await killOriginal(target);
  await restoreAll(t, dir, sharedPagesMutations(image));
});
