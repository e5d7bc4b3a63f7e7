// Integration tests of <mnt>/<pid>/core: a real imgfs mount, real targets built with -g, and what
// real core consumers make of the file: gdb, readelf, gcore's own core of the same frozen process
// and, where core_pattern lets the kernel write one beside the target, the kernel's core.
// Targets are started before the mount so that teardown (last registered runs first) stops the
// FS, which lets every task go, before it kills and reaps the targets.

import test from 'ava';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir, openHeld, readAt, readWhole } from './helpers/files.js';
import { prng } from './helpers/prng.js';
import { buildTarget } from './helpers/build.js';
import {
  loadAt, loadBytes, loads, NT_AUXV, NT_FILE, NT_PRFPREG, NT_PRPSINFO, NT_PRSTATUS, NT_SIGINFO, NT_X86_XSAVE_LAYOUT,
  NT_X86_XSTATE, parseElfCore, PF_R, PF_W, PRSTATUS_PID, PRSTATUS_RIP, PRSTATUS_RSP, PT_NOTE, type ElfCore,
} from './helpers/elfcore.js';
import { procOwner, procSyscall, readMaps, readMem, residentPages, SYS_PAUSE, taskStatus, threadStatuses, type TaskStatus } from './helpers/groundtruth.js';
import { PAGE_SIZE, parseImage } from './helpers/image.js';
import { mountImgfs } from './helpers/mount.js';
import { run, runOk } from './helpers/run.js';
import { startTarget, waitForExit, type Target } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const coreOf = (mnt: string, pid: number) => path.join(mnt, String(pid), 'core');
const dumpOf = (mnt: string, pid: number) => path.join(mnt, String(pid), 'dump');
const hex = (n: number | bigint) => `0x${n.toString(16)}`;
const isFrozen = (status: TaskStatus) => status.state === 't' && status.tracerPid !== 0;
const isReleased = (status: TaskStatus) => status.state !== 't' && status.tracerPid === 0;

/** The core_threads target's ready line: heap address and worker tids. */
function threadsInfo(target: Target): { heap: number; workers: number[] } {
  return { heap: parseInt(target.info[1], 16), workers: target.info.slice(2).map(Number) };
}


/**
 * Starts core_threads and waits until every thread sits in pause(): past the ready line, workers
 * may still be on their way out of the barrier, and their memory and registers still change.
 */
async function startParked(t: Parameters<typeof startTarget>[0]): Promise<Target> {
  const target = await startTarget(t, 'core_threads');
  const tids = [target.pid, ...threadsInfo(target).workers];
  await waitUntil('every thread to park in pause()', () => tids.every((tid) => procSyscall(tid)?.nr === SYS_PAUSE));
  return target;
}

/**
 * Runs gdb on an executable and a core with `commands`, each introduced by an echoed marker, and
 * returns each command's output split per thread ("Thread N (... (LWP tid)):" headers) where it
 * has them. gdb reads the core straight from the mount.
 */
async function gdb(executable: string, core: string, commands: string[]): Promise<{ raw: string; outputs: string[] }> {
  const args = ['-batch', '-nx', '-ex', 'set pagination off', '-ex', 'set width 0'];
  commands.forEach((command, i) => args.push('-ex', `echo @@${i}\\n`, '-ex', command));
  const result = await runOk('gdb', [...args, executable, core], { timeoutMs: 90_000 });
  const raw = `${result.stdout}`;
  const outputs = commands.map((_, i) => {
    const start = raw.indexOf(`@@${i}\n`);
    const end = i + 1 < commands.length ? raw.indexOf(`@@${i + 1}\n`) : raw.length;
    return start < 0 ? '' : raw.slice(start + `@@${i}\n`.length, end);
  });
  return { raw, outputs };
}

function perThread(output: string): Map<number, string> {
  const sections = new Map<number, string>();
  const parts = output.split(/^Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)\):$/m);
  for (let i = 1; i < parts.length; i += 2) sections.set(Number(parts[i]), parts[i + 1]);
  return sections;
}

const frames = (bt: string) => [...bt.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(/gm)].map((m) => m[1]);
const ripOf = (section: string) => BigInt(/^rip\s+(0x[0-9a-f]+)/m.exec(section)?.[1] ?? '-1');

test.serial('core sits beside dump: 0400, owned like /proc/<pid>, its stat size the bytes a read yields', async (t) => {
  const target = await startParked(t);
  const mnt = await mountImgfs(t);
  t.deepEqual((await fsp.readdir(path.join(mnt.dir, String(target.pid)))).sort(), ['core', 'dump']);
  const file = coreOf(mnt.dir, target.pid);
  const before = await fsp.stat(file);
  t.true(before.isFile());
  t.is(before.mode & 0o7777, 0o400);
  t.deepEqual({ uid: before.uid, gid: before.gid }, procOwner(target.pid));

  const handle = await openHeld(t, file);
  const bytes = await readWhole(handle);
  t.is((await handle.stat()).size, bytes.length, 'fstat size of the open core');
  t.is((await fsp.stat(file)).size, bytes.length, 'stat size while open');
  t.is(before.size, bytes.length, 'stat size before the open (the target did not change)');
  const core = parseElfCore(bytes);
  t.is(core.type, 4, 'ET_CORE');
  t.is(core.machine, 62, 'EM_X86_64');
  const last = loads(core).at(-1)!;
  t.is(bytes.length, last.offset + last.filesz, 'the file ends with the last segment');
});

// --live: the same, the pages read from the copy of the process while it runs on.
for (const options of [[], ['--live']]) {
  test.serial(`gdb prints every thread's backtrace, a global, the heap and each thread's thread-local${options.length ? ` (${options.join(' ')})` : ''}`, async (t) => {
    const target = await startParked(t);
    const { heap, workers } = threadsInfo(target);
    const mnt = await mountImgfs(t, options);
    const file = coreOf(mnt.dir, target.pid);
    const { outputs, raw } = await gdb(await buildTarget('core_threads'), file, [
      'thread apply all bt',
      'print/x core_global',
      'print core_heap',
      'print/x core_heap[100]@4',
      'thread apply all print/x core_tls',
      'thread apply all info registers rip',
    ]);
    t.log(raw.split('\n').slice(0, 6).join('\n'));

    const backtraces = perThread(outputs[0]);
    t.deepEqual([...backtraces.keys()].sort((a, b) => a - b), [target.pid, ...workers].sort((a, b) => a - b), 'one backtrace per thread');
    const mainFrames = frames(backtraces.get(target.pid) ?? '');
    t.deepEqual(mainFrames.slice(-2), ['core_main_park', 'main'], `main thread: ${mainFrames.join(' < ')}`);
    for (const tid of workers) {
      const names = frames(backtraces.get(tid) ?? '');
      const at = names.indexOf('core_worker_park');
      t.true(at >= 0 && names[at + 1] === 'core_worker', `worker ${tid}: ${names.join(' < ')}`);
    }

    t.regex(outputs[1], /= 0x1122334455667788$/m);
    t.regex(outputs[2], new RegExp(`= ${hex(heap)} "core heap buffer"`));
    t.regex(outputs[3], /= \{0x64, 0x65, 0x66, 0x67\}/);

    const tls = perThread(outputs[4]);
    t.regex(tls.get(target.pid) ?? '', /= 0x7150fff/);
    workers.forEach((tid, i) => t.regex(tls.get(tid) ?? '', new RegExp(`= ${hex(0x7150000 + i)}$`, 'm'), `core_tls of worker ${i}`));

    // Registers: the workers' program counters. Every thread, stopped in pause(), had calls injected
    // after the snapshot took its registers, and got them back exactly (the gcore test compares
    // every register of every thread).
    const rips = perThread(outputs[5]);
    const handle = await openHeld(t, file);
    for (const tid of workers) {
      // Under --live the threads run on: one just let go is back in pause() a moment later.
      const live = await waitUntil(`worker ${tid} in a system call`, () => procSyscall(tid)?.pc);
      t.is<bigint | undefined, bigint | undefined>(ripOf(rips.get(tid) ?? ''), live, `rip of worker ${tid} against /proc/${tid}/syscall`);
    }
    await handle.close();
  });
}

test.serial('a process whose main thread has exited: gdb prints the backtraces of the threads it still runs, and their counts', async (t) => {
  const target = await startTarget(t, 'leader_exit');
  const tids = target.info.slice(2).map(Number);
  await waitUntil('the main thread to be a zombie', () => taskStatus(target.pid).state === 'Z');
  const mnt = await mountImgfs(t);
  const file = coreOf(mnt.dir, target.pid);
  const statSize = (await fsp.stat(file)).size;
  const handle = await openHeld(t, file);
  const bytes = await readWhole(handle);
  t.is(statSize, bytes.length, 'stat size: the bytes a read yields');
  const { outputs } = await gdb(await buildTarget('leader_exit'), file, ['thread apply all bt', 'print slots[0] > 0 && slots[1] > 0']);
  // glibc still lists the main thread (its descriptor outlives pthread_exit): gdb shows it as
  // exiting, with no registers, as in a core the kernel writes for such a process.
  const backtraces = perThread(outputs[0]);
  t.deepEqual([...backtraces.keys()].sort((a, b) => a - b), tids, 'one backtrace per live thread');
  for (const tid of tids) {
    const names = frames(backtraces.get(tid) ?? '');
    t.true(names.includes('leader_exit_worker'), `thread ${tid}: ${names.join(' < ')}`);
  }
  t.regex(outputs[1], /= 1$/m);
  const notes = parseElfCore(bytes).notes.filter((note) => note.type === NT_PRSTATUS);
  t.deepEqual(notes.map((note) => note.desc.readInt32LE(PRSTATUS_PID)), tids, 'NT_PRSTATUS of each live thread');
  t.deepEqual(psinfoState(bytes), [4, 'Z', 1], 'the process state is its leader\'s, a zombie');
});

/** NT_PRPSINFO's pr_state, pr_sname and pr_zomb. */
function psinfoState(core: Buffer): [number, string, number] {
  const { desc } = parseElfCore(core).notes.find((note) => note.type === NT_PRPSINFO)!;
  return [desc[0], String.fromCharCode(desc[1]), desc[2]];
}

/** NT_SIGINFO's si_signo, si_errno, si_code, and the pid and uid after them. */
function siginfoFields(core: Buffer): number[] {
  const { desc } = parseElfCore(core).notes.find((note) => note.type === NT_SIGINFO)!;
  return [0, 4, 8, 16, 20].map((at) => desc.readInt32LE(at));
}

test.serial('the process state in NT_PRPSINFO is the one it was in before the freeze: sleeping, or stopped; NT_SIGINFO the stop signal, sent by a user', async (t) => {
  const target = await startParked(t);
  const mnt = await mountImgfs(t);
  const file = coreOf(mnt.dir, target.pid);
  const running = await fsp.readFile(file);
  t.deepEqual(psinfoState(running), [1, 'S', 0], 'sleeping in pause()');
  t.deepEqual(siginfoFields(running), [0, 0, 0, 0, 0], 'no signal stopped it');
  await waitUntil('the dump to let go', () => threadStatuses(target.pid).every((s) => s.tracerPid === 0));
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target to stop', () => threadStatuses(target.pid).every((s) => s.state === 'T'));
  const stopped = await fsp.readFile(file);
  t.deepEqual(psinfoState(stopped), [3, 'T', 0], 'stopped by SIGSTOP');
  t.deepEqual(siginfoFields(stopped), [19, 0, 0, 0, 0], 'SIGSTOP, SI_USER (its sender unknown by then), not ptrace\'s own record of the stop');
  process.kill(target.pid, 'SIGCONT');
});

test.serial('readelf -lnW reads the core without a warning', async (t) => {
  const target = await startParked(t);
  const mnt = await mountImgfs(t);
  const result = await run('readelf', ['-lnW', coreOf(mnt.dir, target.pid)]);
  t.is(result.code, 0);
  t.is(result.stderr, '');
  t.regex(result.stdout, /Elf file type is CORE/);
  for (const type of ['NT_PRSTATUS', 'NT_PRPSINFO', 'NT_SIGINFO', 'NT_AUXV', 'NT_FILE', 'NT_FPREGSET', 'NT_X86_XSTATE']) {
    t.regex(result.stdout, new RegExp(type));
  }
});

/** Note types of a core, without gdb's own (owner "GDB") and the kernel-only ones gcore lacks. */
function noteTypes(core: ElfCore, drop: number[] = []): number[] {
  return [...new Set(core.notes.filter((n) => n.name !== 'GDB' && !drop.includes(n.type)).map((n) => n.type))].sort((a, b) => a - b);
}

test.serial('against gcore of the same stopped process: segments, memory, note types and registers agree', async (t) => {
  const target = await startParked(t);
  const { workers } = threadsInfo(target);
  const work = await makeTempDir(t);
  const mnt = await mountImgfs(t);
  // gcore cannot attach while imgfs holds the task: stop it, let gcore write its core and detach,
  // then read ours. A stopped task keeps its registers and memory in between.
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target to stop', () => threadStatuses(target.pid).every((s) => s.state === 'T'));
  await runOk('gcore', ['-o', path.join(work, 'gcore'), String(target.pid)], { timeoutMs: 90_000 });
  const theirsPath = path.join(work, `gcore.${target.pid}`);
  const theirs = await fsp.readFile(theirsPath);
  const file = coreOf(mnt.dir, target.pid);
  // Held open to the end: gdb below must read this snapshot. A new one would show the leader's
  // registers rewound for the syscall restart by the first one's brk injection.
  const handle = await openHeld(t, file);
  const ours = await readWhole(handle);
  const maps = readMaps(target.pid);
  const ourCore = parseElfCore(ours);
  const theirCore = parseElfCore(theirs);

  let compared = 0;
  for (const load of loads(theirCore).filter((l) => l.filesz > 0)) {
    const what = `gcore's segment at ${hex(load.vaddr)}`;
    if (load.vaddr >= 1n << 63n) continue; // [vsyscall]: gdb can neither read it nor tell its flags
    const mine = loadAt(ourCore, load.vaddr);
    if (!mine) {
      t.fail(`${what} has no PT_LOAD in our core`);
      continue;
    }
    t.is(mine.memsz, load.memsz, `${what}: size`);
    const perms = maps.find((m) => BigInt(m.start) === load.vaddr)?.perms ?? '';
    // gdb marks every segment readable; compare flags where the mapping is.
    if (perms.startsWith('r')) {
      t.is(mine.flags, load.flags, `${what}: flags (${perms})`);
    }
    const both = Math.min(mine.filesz, load.filesz);
    if (both > 0) {
      const [x, y] = [loadBytes(ours, mine).subarray(0, both), loadBytes(theirs, load).subarray(0, both)];
      const differ = x.findIndex((byte, i) => byte !== y[i]);
      const page = Number(load.vaddr) + differ - (differ % PAGE_SIZE);
      t.is(differ, -1, `${what}: ${both} bytes; first difference at +${hex(differ)}: ours ${x.subarray(differ, differ + 16).toString('hex')}, gcore's ${y.subarray(differ, differ + 16).toString('hex')}; page ${hex(page)} resident now: ${residentPages(target.pid, page, page + PAGE_SIZE).length}, differing bytes ${x.filter((byte, i) => byte !== y[i]).length}`);
      compared += both;
    }
  }
  t.true(compared > 3 * 8 * 1024 * 1024, `compared ${compared} bytes (the thread stacks at least)`);
  t.deepEqual(noteTypes(ourCore, [NT_SIGINFO, NT_X86_XSAVE_LAYOUT]), noteTypes(theirCore));

  // Registers: gdb reads both cores' NT_PRSTATUS; the snapshot's are what PTRACE_GETREGS gave.
  const command = 'thread apply all info registers rip rsp';
  const executable = await buildTarget('core_threads');
  const ourRegs = perThread((await gdb(executable, file, [command])).outputs[0]);
  const theirRegs = perThread((await gdb(executable, theirsPath, [command])).outputs[0]);
  for (const tid of [target.pid, ...workers]) {
    t.is(ripOf(ourRegs.get(tid) ?? ''), ripOf(theirRegs.get(tid) ?? ''), `rip of thread ${tid}`);
    t.is(/^rsp\s+(0x[0-9a-f]+)/m.exec(ourRegs.get(tid) ?? '')?.[1], /^rsp\s+(0x[0-9a-f]+)/m.exec(theirRegs.get(tid) ?? '')?.[1], `rsp of thread ${tid}`);
  }
  await handle.close();
  await waitUntil('the target to be let go, still stopped', () => threadStatuses(target.pid).every((s) => s.state === 'T' && s.tracerPid === 0));
  t.pass();
});

/** The core_maps target's mappings by name (see test/targets/core_maps.c). */
const MAP_NAMES = ['sparse', 'anonshared', 'dontdump', 'untouched', 'data', 'elf', 'shared', 'short', 'noread'] as const;
type MapName = (typeof MAP_NAMES)[number];
const SPARSE_BYTES = 64 << 20;
const SPARSE_TOUCHED = 4097;
const MAP_PAGES: Record<MapName, number> = { sparse: SPARSE_BYTES / PAGE_SIZE, anonshared: 4, dontdump: 4, untouched: 16, data: 4, elf: 2, shared: 4, short: 4, noread: 2 };

async function startMaps(t: Parameters<typeof startTarget>[0], dir: string): Promise<{ target: Target; at: Record<MapName, number> }> {
  const target = await startTarget(t, 'core_maps', [dir]);
  const at = Object.fromEntries(MAP_NAMES.map((name, i) => [name, parseInt(target.info[1 + i], 16)])) as Record<MapName, number>;
  return { target, at };
}

async function readCore(file: string): Promise<{ bytes: Buffer; core: ElfCore; statSize: number }> {
  const statSize = (await fsp.stat(file)).size;
  const handle = await fsp.open(file, 'r');
  try {
    const bytes = await readWhole(handle);
    return { bytes, core: parseElfCore(bytes), statSize };
  } finally {
    await handle.close();
  }
}

const filled = (length: number, byte: string) => Buffer.alloc(length, byte);

test.serial('coredump_filter decides which mappings carry bytes, as the kernel\'s vma_dump_size does', async (t) => {
  const work = await makeTempDir(t);
  const { target, at } = await startMaps(t, work);
  const mnt = await mountImgfs(t);
  const file = coreOf(mnt.dir, target.pid);
  const filesz = (core: ElfCore) => Object.fromEntries(MAP_NAMES.map((name) => [name, loadAt(core, at[name])?.filesz]));
  const pages = (counts: Record<MapName, number>) => Object.fromEntries(MAP_NAMES.map((name) => [name, counts[name] * PAGE_SIZE]));

  const expected: Array<[number, Record<MapName, number>]> = [
    // Default: anonymous memory (private if written, shared), ELF header pages; no file contents.
    [0x33, { sparse: MAP_PAGES.sparse, anonshared: 4, dontdump: 0, untouched: 0, data: 0, elf: 1, shared: 0, short: 4, noread: 2 }],
    // Everything but DAX: file contents too; MADV_DONTDUMP and never written memory still not.
    [0x7f, { sparse: MAP_PAGES.sparse, anonshared: 4, dontdump: 0, untouched: 0, data: 4, elf: 2, shared: 4, short: 4, noread: 2 }],
    [0x00, { sparse: 0, anonshared: 0, dontdump: 0, untouched: 0, data: 0, elf: 0, shared: 0, short: 0, noread: 0 }],
  ];
  for (const [filter, counts] of expected) {
    // A filter is read with the snapshot: the one kept a moment after the last read is let go first.
    await waitUntil('the target to run on', () => threadStatuses(target.pid).every(isReleased), 5000);
    await fsp.writeFile(`/proc/${target.pid}/coredump_filter`, `0x${filter.toString(16)}`);
    const { bytes, core, statSize } = await readCore(file);
    t.is(statSize, bytes.length, `filter ${hex(filter)}: stat size`);
    t.deepEqual(filesz(core), pages(counts), `filter ${hex(filter)}`);
    const specials = readMaps(target.pid).filter((m) => /^\[(vdso|vvar.*)\]$/.test(m.name));
    for (const m of specials) t.is(loadAt(core, m.start)?.filesz, m.end - m.start, `filter ${hex(filter)}: ${m.name} always`);
    t.is(loadAt(core, 0xffffffffff600000n)?.filesz, PAGE_SIZE, `filter ${hex(filter)}: [vsyscall] last`);
    if (filter === 0x7f) {
      t.true(loadBytes(bytes, loadAt(core, at.data)!).equals(filled(4 * PAGE_SIZE, 'D')), 'data.bin');
      t.is(loadBytes(bytes, loadAt(core, at.shared)!).toString('latin1', 0, 13), 'shared write\0');
    }
  }
});

test.serial('dumped memory: holes of anonymous memory read as zeros without touching the target, as do pages past EOF', async (t) => {
  const work = await makeTempDir(t);
  const { target, at } = await startMaps(t, work);
  const mnt = await mountImgfs(t);
  const residentBefore = residentPages(target.pid, at.sparse, at.sparse + SPARSE_BYTES);
  const { bytes, core } = await readCore(coreOf(mnt.dir, target.pid));
  t.deepEqual(residentPages(target.pid, at.sparse, at.sparse + SPARSE_BYTES), residentBefore, 'no page of the sparse mapping was faulted in');

  const sparse = loadBytes(bytes, loadAt(core, at.sparse)!);
  const expectedSparse = Buffer.alloc(SPARSE_BYTES);
  expectedSparse.fill('S', 0, PAGE_SIZE);
  expectedSparse.fill(String.fromCharCode('S'.charCodeAt(0) + (SPARSE_TOUCHED % 16)), SPARSE_TOUCHED * PAGE_SIZE, (SPARSE_TOUCHED + 1) * PAGE_SIZE);
  t.true(sparse.equals(expectedSparse), 'two written pages, zeros elsewhere');

  t.true(loadBytes(bytes, loadAt(core, at.anonshared)!).equals(filled(4 * PAGE_SIZE, 'A')), 'shared anonymous memory');
  t.is(loadBytes(bytes, loadAt(core, at.elf)!).toString('latin1', 0, 4), '\x7fELF', 'the ELF header page');
  const short = loadBytes(bytes, loadAt(core, at.short)!);
  const expectedShort = Buffer.alloc(4 * PAGE_SIZE);
  expectedShort.fill('h', 0, PAGE_SIZE + PAGE_SIZE / 2);
  expectedShort.write('short write\0', 0, 'latin1');
  t.true(short.equals(expectedShort), 'a written page, the file\'s last half page, zeros past the end of the file');
  t.true(loadBytes(bytes, loadAt(core, at.noread)!).equals(filled(2 * PAGE_SIZE, 'R')), 'written memory made PROT_NONE, read with force');

  // Every segment the core and /proc/<pid>/mem can both read agrees.
  const handle = await openHeld(t, dumpOf(mnt.dir, target.pid)); // holds the target frozen
  for (const load of loads(core).filter((l) => l.filesz > 0 && l.vaddr < 1n << 47n)) {
    const m = readMaps(target.pid).find((entry) => BigInt(entry.start) === load.vaddr)!;
    if (!m.perms.startsWith('r') || /^\[vvar/.test(m.name) || m.name.endsWith('short.bin')) continue;
    t.true(loadBytes(bytes, load).equals(readMem(target.pid, Number(load.vaddr), load.filesz)), `${hex(load.vaddr)} ${m.name}`);
  }
  await handle.close();
});

const corePattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
const kernelCoreHere = corePattern === 'core';

(kernelCoreHere ? test.serial : test.serial.skip)('segments and notes equal the core the kernel writes when the process is killed', async (t) => {
  const work = await makeTempDir(t);
  const { target } = await startMaps(t, work);
  const mnt = await mountImgfs(t);
  const { bytes: ours, core: ourCore } = await readCore(coreOf(mnt.dir, target.pid));
  await waitUntil('the target to be released', () => threadStatuses(target.pid).every(isReleased));

  await runOk('prlimit', [`--pid=${target.pid}`, '--core=unlimited']);
  process.kill(target.pid, 'SIGABRT');
  await waitForExit(target.proc);
  const usesPid = readFileSync('/proc/sys/kernel/core_uses_pid', 'utf8').trim() === '1';
  const kernelPath = path.join(work, usesPid ? `core.${target.pid}` : 'core');
  await waitUntil('the kernel to write its core', () => fsp.stat(kernelPath).then(() => true, () => false));
  const kernel = await fsp.readFile(kernelPath);
  const kernelCore = parseElfCore(kernel);

  t.is(ours.length, kernel.length, 'size');
  t.deepEqual(ourCore.phdrs, kernelCore.phdrs, 'program headers, offsets included');
  for (const load of loads(kernelCore)) {
    t.true(loadBytes(ours, load).equals(loadBytes(kernel, load)), `segment ${hex(load.vaddr)}`);
  }
  t.deepEqual(ourCore.notes.map((n) => [n.name, n.type, n.desc.length]), kernelCore.notes.map((n) => [n.name, n.type, n.desc.length]));
  // The kernel's notes also record the killing signal (pr_cursig, NT_SIGINFO) and its own task
  // state; registers, FPU state, auxv and the file table are the same bytes.
  for (const type of [NT_PRFPREG, NT_X86_XSTATE, NT_AUXV, NT_FILE, NT_X86_XSAVE_LAYOUT]) {
    const a = ourCore.notes.filter((n) => n.type === type).map((n) => n.desc.toString('hex'));
    const b = kernelCore.notes.filter((n) => n.type === type).map((n) => n.desc.toString('hex'));
    t.deepEqual(a, b, `note ${hex(type)}`);
  }
  const regs = (core: ElfCore) => core.notes.filter((n) => n.type === NT_PRSTATUS).map((n) => n.desc.subarray(PRSTATUS_PID, PRSTATUS_PID + 4).toString('hex') + n.desc.subarray(112, 328).toString('hex'));
  t.deepEqual(regs(ourCore), regs(kernelCore), 'pid and registers of NT_PRSTATUS');
});

test.serial('cp of the whole core and dd slices at any offset and size are byte-identical; concurrent cp too', async (t) => {
  const target = await startParked(t);
  const mnt = await mountImgfs(t);
  const work = await makeTempDir(t);
  const file = coreOf(mnt.dir, target.pid);
  const handle = await openHeld(t, file); // one snapshot for every reader below
  const size = (await handle.stat()).size;

  const [a, b] = [path.join(work, 'a.core'), path.join(work, 'b.core')];
  await Promise.all([runOk('cp', [file, a]), runOk('cp', [file, b])]);
  const copy = await fsp.readFile(a);
  t.is(copy.length, size);
  t.true(copy.equals(await fsp.readFile(b)), 'two concurrent copies');
  const core = parseElfCore(copy);
  const note = core.phdrs.find((p) => p.type === PT_NOTE)!;
  const firstLoad = loads(core).find((l) => l.filesz > 0)!;

  const boundaries = [0, 63, 64, note.offset, note.offset + note.filesz, firstLoad.offset, size - PAGE_SIZE, size - 1];
  const next = prng(0xc0de);
  const slices: Array<{ offset: number; length: number; bs: number }> = [];
  for (const boundary of boundaries) {
    for (const delta of [-3, 0, 5]) {
      const offset = boundary + delta;
      if (offset >= 0) slices.push({ offset, length: [1, 17, 4099, 70001][slices.length % 4], bs: [512, 4096, 333, 131072][slices.length % 4] });
    }
  }
  for (let i = 0; i < 12; i++) {
    slices.push({ offset: Math.floor(next() * size), length: 1 + Math.floor(next() * 400_000), bs: [4096, 65537, 777, 131072][i % 4] });
  }
  for (const [i, { offset, length, bs }] of slices.entries()) {
    const out = path.join(work, `slice-${i}`);
    await runOk('dd', [`if=${file}`, `of=${out}`, `bs=${bs}`, 'iflag=skip_bytes,count_bytes', `skip=${offset}`, `count=${length}`, 'status=none']);
    t.true((await fsp.readFile(out)).equals(copy.subarray(offset, offset + length)), `dd bs=${bs} skip_bytes=${offset} count_bytes=${length}`);
  }
});

test.serial('dump and core of one process share one freeze and one snapshot', async (t) => {
  const target = await startParked(t);
  const { heap } = threadsInfo(target);
  const mnt = await mountImgfs(t);
  const dumpHandle = await openHeld(t, dumpOf(mnt.dir, target.pid));
  const tracers = new Set(threadStatuses(target.pid).map((s) => s.tracerPid));
  const coreHandle = await openHeld(t, coreOf(mnt.dir, target.pid));
  t.true(threadStatuses(target.pid).every(isFrozen), 'frozen');
  t.deepEqual(new Set(threadStatuses(target.pid).map((s) => s.tracerPid)), tracers, 'the same single tracer after the second open');
  t.deepEqual([...tracers], [mnt.proc.pid], 'traced by the imgfs process');

  const image = parseImage(await readWhole(dumpHandle));
  const bytes = await readWhole(coreHandle);
  const core = parseElfCore(bytes);
  const leader = core.notes.find((n) => n.type === NT_PRSTATUS)!.desc;
  t.is(leader.readInt32LE(PRSTATUS_PID), target.pid);
  t.is(leader.readBigUInt64LE(PRSTATUS_RIP), image.regs.ip, 'rip');
  t.is(leader.readBigUInt64LE(PRSTATUS_RSP), image.regs.sp, 'rsp');
  t.deepEqual(
    core.notes.map((n) => n.type).slice(0, 7),
    [NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE, NT_PRFPREG, NT_X86_XSTATE],
    'the leader\'s notes in the kernel\'s order',
  );

  const heapPage = heap - (heap % PAGE_SIZE);
  const record = image.pages.find((p) => p.vaddr === heapPage)!;
  const heapLoad = loads(core).find((l) => l.vaddr <= BigInt(heapPage) && BigInt(heapPage) < l.vaddr + BigInt(l.memsz))!;
  const inCore = bytes.subarray(heapLoad.offset + heapPage - Number(heapLoad.vaddr), heapLoad.offset + heapPage - Number(heapLoad.vaddr) + PAGE_SIZE);
  const imageBytes = await readAt(dumpHandle, record.offset, PAGE_SIZE);
  t.true(inCore.equals(imageBytes), 'the heap page is the same in both files');
  t.is(heapLoad.flags, PF_R | PF_W);

  await dumpHandle.close();
  t.true(threadStatuses(target.pid).every(isFrozen), 'still frozen while the core is open');
  await coreHandle.close();
  await waitUntil('the target to run on after the last close', () => threadStatuses(target.pid).every(isReleased));
});

test.serial('a core opened again within a second of its last close (gdb opens it two or three times) is the same snapshot, its process frozen meanwhile; then it runs on', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line.startsWith('tick '));
  const mnt = await mountImgfs(t);
  const core = coreOf(mnt.dir, target.pid);
  const first = await fsp.readFile(core);
  t.true(threadStatuses(target.pid).every(isFrozen), 'still frozen after the last close');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.true((await fsp.readFile(core)).equals(first), 'the same snapshot, 300 ms later (the counter ticks every 100 ms)');
  await waitUntil('the target to run on', () => threadStatuses(target.pid).every(isReleased), 5000);
  const from = target.lines().length;
  await target.waitForLine((line) => line.startsWith('tick '), { from });
  t.false((await fsp.readFile(core)).equals(first), 'a new snapshot once it ran');
});

test.serial('gdb on the live core of a process that maps and unmaps memory all the time: the backtrace down to main', async (t) => {
  const target = await startTarget(t, 'core_churn');
  const mnt = await mountImgfs(t);
  const { outputs } = await gdb(target.binary, coreOf(mnt.dir, target.pid), ['bt']);
  t.deepEqual(frames(outputs[0]).slice(-4), ['level3', 'level2', 'level1', 'main'], outputs[0]);
});
