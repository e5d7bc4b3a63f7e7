// Swapped-out pages are memory too: the 2011 proposal skipped them, imgfs must not. A swap file of
// the test's own is enabled for the duration of this file; the target pushes its pattern out to
// it with MADV_PAGEOUT, and both dump and core must still carry every page's bytes.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { loadBytes, loads, parseElfCore } from './helpers/elfcore.js';
import { readFileAsync } from './helpers/files.js';
import { residentPages, SWAPPED } from './helpers/groundtruth.js';
import { PAGE_SIZE, parseImage } from './helpers/image.js';
import { mountImgfs } from './helpers/mount.js';
import { startTarget, type Target } from './helpers/targets.js';

const SWAP_FILE = `/var/tmp/imgfs-test-swap-${process.pid}`;

/** Enables a 32 MiB swap file; returns why it could not, or null. */
function enableSwap(): string | null {
  try {
    execFileSync('fallocate', ['-l', '32M', SWAP_FILE], { stdio: 'pipe' });
    execFileSync('chmod', ['600', SWAP_FILE], { stdio: 'pipe' });
    execFileSync('mkswap', [SWAP_FILE], { stdio: 'pipe' });
    execFileSync('swapon', [SWAP_FILE], { stdio: 'pipe' });
    return null;
  } catch (err) {
    rmSync(SWAP_FILE, { force: true });
    return ((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim().split('\n')[0];
  }
}

const swapRefused = enableSwap();
test.after.always(() => {
  if (swapRefused !== null) return;
  try {
    execFileSync('swapoff', [SWAP_FILE], { stdio: 'pipe' });
  } finally {
    rmSync(SWAP_FILE, { force: true });
  }
});

/** Page i of the target's region, as swapped.c fills it. */
function expectedPage(i: number): Buffer {
  const page = Buffer.alloc(PAGE_SIZE, (i * 7 + 3) & 0xff);
  page.writeBigUInt64LE(BigInt(i) | 0x5357415000000000n, 0);
  return page;
}

/** How many of the pages from base are swapped out now, per /proc/<pid>/pagemap. */
function swappedNow(pid: number, base: number, pages: number): number {
  return residentPages(pid, base, base + pages * PAGE_SIZE, SWAPPED).length;
}

async function pageOutAgain(target: Target): Promise<void> {
  const from = target.lines().length;
  process.kill(target.pid, 'SIGUSR1');
  await target.waitForLine((line) => line.startsWith('swapped '), { from });
}

const swapTest = swapRefused === null ? test : test.skip;
const title = 'swapped-out pages are in the dump and the core with their bytes' +
  (swapRefused === null ? '' : ` (skipped: no swap here: ${swapRefused})`);

swapTest(title, async (t) => {
  const target = await startTarget(t, 'swapped');
  const base = parseInt(target.info[1], 16);
  const pages = Number(target.info[2]);
  const mnt = await mountImgfs(t);
  const file = (name: string) => path.join(mnt.dir, String(target.pid), name);

  const beforeDump = swappedNow(target.pid, base, pages);
  t.true(beforeDump > pages / 2, `MADV_PAGEOUT swapped out ${beforeDump} of ${pages} pages`);
  const bytes = await readFileAsync(file('dump'));
  const image = parseImage(bytes);
  const inRegion = image.pages.filter((page) => page.vaddr >= base && page.vaddr < base + pages * PAGE_SIZE);
  t.deepEqual(inRegion.map((page) => page.vaddr), Array.from({ length: pages }, (_, i) => base + i * PAGE_SIZE));
  const wrong = inRegion.filter((page, i) => !bytes.subarray(page.offset, page.offset + PAGE_SIZE).equals(expectedPage(i)));
  t.is(wrong.length, 0, 'every dumped page holds what the target wrote before it was swapped out');

  await pageOutAgain(target);
  const beforeCore = swappedNow(target.pid, base, pages);
  t.true(beforeCore > pages / 2, `MADV_PAGEOUT swapped out ${beforeCore} of ${pages} pages again`);
  const coreBytes = await readFileAsync(file('core'));
  const end = BigInt(base + pages * PAGE_SIZE);
  const load = loads(parseElfCore(coreBytes)).find((p) => p.vaddr <= BigInt(base) && end <= p.vaddr + BigInt(p.memsz));
  t.truthy(load, 'a PT_LOAD holds the region');
  const from = base - Number(load!.vaddr);
  const region = loadBytes(coreBytes, load!).subarray(from, from + pages * PAGE_SIZE);
  const expected = Buffer.concat(Array.from({ length: pages }, (_, i) => expectedPage(i)));
  t.true(region.equals(expected), 'the core holds every swapped-out page, not zeros');
});
