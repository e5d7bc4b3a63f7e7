// Every dumped page back in place, byte for byte, whichever way the restore puts it there:
// UFFDIO_COPY through a userfaultfd of the restored task (the default), or process_vm_writev
// (IMGFS_USERFAULTFD=0, what a kernel without userfaultfd gets, or a seccomp filter that refuses
// userfaultfd, as containers have), from a file (read with readv, the pages straight into place)
// or from a pipe (reads that stop anywhere). Checked against the pattern the target wrote, read
// back from /proc/<pid>/mem, and against what a userfaultfd could leave behind: its descriptor, or
// VMAs still registered with it.

import test, { type ExecutionContext } from 'ava';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { buildTarget } from './helpers/build.js';
import { patternPage, readMaps, readMem, readVmFlags, residentPages } from './helpers/groundtruth.js';
import { PAGE_SIZE } from './helpers/image.js';
import { dumpToFile, killOriginal, startRestorer, type RestoreRun } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

/** More than the first chunk the reader parses, and many scatter reads of 512 records. */
const MIB = 24;

const layout = (pid: number) => readMaps(pid).map(({ start, end, perms, offset, name }) => ({ start, end, perms, offset, name }));

async function roundTrip(t: ExecutionContext, how: (image: string) => { args: string[]; run: RestoreRun }, check?: (pid: number) => void): Promise<void> {
  const target = await startTarget(t, 'pattern', [String(MIB)]);
  const region = parseInt(target.info[1], 16);
  const bytes = Number(target.info[2]);
  const image = await dumpToFile(t, target);
  const before = layout(target.pid);
  await killOriginal(target);

  const { args, run } = how(image);
  const restorer = startRestorer(t, ['--detach', ...args], run);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  t.deepEqual(layout(pid), before, 'the same mappings');
  t.is(residentPages(pid, region, region + bytes).length, bytes / PAGE_SIZE, 'every page of the pattern is there');
  const memory = readMem(pid, region, bytes);
  let wrong = 0;
  for (let at = 0; at < bytes; at += PAGE_SIZE) {
    if (!memory.subarray(at, at + PAGE_SIZE).equals(patternPage(region + at))) wrong++;
  }
  t.is(wrong, 0, 'pages that differ from the pattern');
  const descriptors = readdirSync(`/proc/${pid}/fd`).map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`));
  t.false(descriptors.some((d) => d.includes('userfaultfd')), `no userfaultfd left open: ${descriptors.join(', ')}`);
  const registered = [...readVmFlags(pid)].filter(([, flags]) => flags.has('um') || flags.has('uw'));
  t.deepEqual(registered.map(([start]) => start.toString(16)), [], 'no VMA left registered with a userfaultfd');
  check?.(pid);
}

test('from a file, placed through a userfaultfd', (t) => roundTrip(t, (image) => ({ args: [image], run: {} })));

test('from a file, written with process_vm_writev (IMGFS_USERFAULTFD=0)', (t) =>
  roundTrip(t, (image) => ({ args: [image], run: { env: { IMGFS_USERFAULTFD: '0' } } })));

test('from a file, under a seccomp filter that refuses userfaultfd: written with process_vm_writev', async (t) => {
  const deny = await buildTarget('deny_userfaultfd');
  await roundTrip(t, (image) => ({
    args: [image],
    run: { command: [deny, process.execPath, '--import=tsx', 'src/cli.ts', 'restore', '--detach', image] },
  }), (pid) => {
    // The stub inherited the filter, so its userfaultfd was refused: the pages came the other way.
    t.regex(readFileSync(`/proc/${pid}/status`, 'utf8'), /^Seccomp:\s+2$/m, 'the restored task runs under the filter');
  });
});

test('from a pipe, placed through a userfaultfd', (t) => roundTrip(t, (image) => ({ args: ['-'], run: { stdinFile: image } })));
