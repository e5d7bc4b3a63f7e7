// Holds a parsed image against the process it claims to be, read independently from /proc.
// Call while the process cannot change: its dump open (frozen) or the process stopped.

import type { ExecutionContext } from 'ava';
import { expectedFlags, expectedPages, expectedProt, isFileless, readMaps, readMem, type MapsEntry } from './groundtruth.js';
import { IMG_MAGIC, IMG_VERSION, PAGE_SIZE, type Image, type ImageVma } from './image.js';

const hex = (n: number) => `0x${n.toString(16)}`;

export function describeVma(vma: ImageVma | MapsEntry): string {
  return `${hex(vma.start)}-${hex(vma.end)}`;
}

/** The image VMA record a maps line must produce; anonymous pgoff is left to the caller. */
function expectedVma(entry: MapsEntry) {
  return { prot: expectedProt(entry), flags: expectedFlags(entry), pad: 0, fd: 0, start: entry.start, end: entry.end };
}

export function assertVmasMatch(t: ExecutionContext, image: Image, pid: number): void {
  const maps = readMaps(pid);
  t.deepEqual(image.vmas.map(describeVma), maps.map(describeVma), `VMA ranges of pid ${pid} differ from /proc/${pid}/maps`);
  for (const [i, entry] of maps.entries()) {
    const vma = image.vmas[i];
    if (!vma) break;
    const { pgoff, ...fields } = vma;
    t.deepEqual(fields, expectedVma(entry), `VMA ${describeVma(entry)} ${entry.perms} ${entry.name}`);
    // A file VMA's pgoff is its file offset in pages; userspace cannot know an anonymous VMA's
    // vm_pgoff for sure, so 0 and the kernel's default (start in pages) are both accepted.
    if (isFileless(entry)) t.true(pgoff === 0 || pgoff === entry.start / PAGE_SIZE, `pgoff ${pgoff} of anonymous VMA ${describeVma(entry)}`);
    else t.is(pgoff, entry.offset / PAGE_SIZE, `pgoff of ${describeVma(entry)} ${entry.name}`);
  }
}

/** Groups ascending page addresses into [start, end) runs of consecutive pages. */
export function pageRuns(addresses: number[]): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const addr of addresses) {
    const last = runs[runs.length - 1];
    if (last && last[1] === addr) last[1] += PAGE_SIZE;
    else runs.push([addr, addr + PAGE_SIZE]);
  }
  return runs;
}

/** Every page record's bytes equal /proc/<pid>/mem at its vaddr. */
export function assertPagesEqualMemory(t: ExecutionContext, image: Image, imageBytes: Buffer, pid: number): void {
  let recordIndex = 0;
  let mismatches = 0;
  for (const [start, end] of pageRuns(image.pages.map((page) => page.vaddr))) {
    const memory = readMem(pid, start, end - start);
    for (let addr = start; addr < end; addr += PAGE_SIZE, recordIndex++) {
      const { offset } = image.pages[recordIndex];
      const inImage = imageBytes.subarray(offset, offset + PAGE_SIZE);
      if (!inImage.equals(memory.subarray(addr - start, addr - start + PAGE_SIZE))) {
        if (mismatches++ < 5) t.fail(`page ${hex(addr)} (image offset ${offset}) differs from /proc/${pid}/mem`);
      }
    }
  }
  t.is(mismatches, 0, `pages of pid ${pid} that differ from /proc/${pid}/mem`);
}

/** Header, VMA list, page list and page bytes against /proc/<pid>. */
export function assertImageMatchesProcess(t: ExecutionContext, image: Image, imageBytes: Buffer, pid: number): void {
  t.is(image.magic, IMG_MAGIC, 'magic');
  t.is(image.version, IMG_VERSION, 'version');
  t.is(image.size, imageBytes.length, 'the image ends right after the page terminator and its extension');
  assertVmasMatch(t, image, pid);
  const expected = expectedPages(pid);
  const dumped = image.pages.map((page) => page.vaddr);
  if (dumped.length !== expected.length || dumped.some((addr, i) => addr !== expected[i])) {
    const missing = expected.filter((addr) => !dumped.includes(addr)).slice(0, 10).map(hex);
    const extra = dumped.filter((addr) => !expected.includes(addr)).slice(0, 10).map(hex);
    t.fail(`page records of pid ${pid}: ${dumped.length} dumped, ${expected.length} present or swapped; ` +
      `missing ${missing.join(' ')}; not expected ${extra.join(' ')}`);
  } else {
    t.pass();
  }
  assertPagesEqualMemory(t, image, imageBytes, pid);
}
