// `imgfs restore`'s engine: turns an image into a running process, reading the image once, front
// to back. The VMA list comes first, so the stub is prepared and the VMAs mapped before the first
// page arrives; each page is written as it streams by, v0's and then the shared memory's of the
// extension's SHARED_PAGES records; what only the rest of the extension knows
// (files, vDSO, madvise flags, registers of every thread, signal dispositions, open files, umask,
// resource limits, interval and POSIX timers, seccomp, credentials, scheduling) is applied last.
// Any failure kills the stub: nothing half-restored is left running.

import { NT_X86_XSTATE } from '../elfnotes.js';
import { HEADER_SIZE, MM_SIZE, REGS_SIZE } from '../format.js';
import { vmaFlagEntries, type ImageExtension } from '../extension-model.js';
import { ImageReader, type ImageHead, type PageBatch } from '../imagestream.js';
import { getRegset } from '../ptrace/regs.js';
import { killAndReap } from '../ptrace/spawn.js';
import { AddressSpace, checkMappedFiles, planVmas } from './addressspace.js';
import { ImageInput } from './input.js';
import { armTimers, setLimits } from './limits.js';
import { interrupted, RestoreError } from './errors.js';
import { setDumpable, setIdentity } from './identity.js';
import { setOomScoreAdj, setPersonality, setScheduling, setTimerSlack } from './scheduling.js';
import { setSeccomp, suspendSeccomp } from './seccomp.js';
import { DEV_NULL, programName, restoreFds, setCwd, setMmMap, setName, setSigactions, staysTheRestorers } from './process.js';
import { registersFromV0 } from './regs.js';
import { createStub, letLive, moveStub, stubTids, type Stub } from './stub.js';
import { ownId } from '../proc/status.js';
import { createThreads, queuePendingSignals, releaseThreads, setOwnState, setThreadState, type ThreadState } from './threads.js';
import { fitXstate } from './xstate.js';

/**
 * Which pid and thread ids the restored process gets: the dumped ones or an error (required), the
 * dumped ones where they are free (preferred), or new ones.
 */
export type IdChoice = 'required' | 'preferred' | 'new';

export interface RestoreOptions {
  /** Map a file that changed or vanished as anonymous memory (with a warning) instead of failing. */
  anonFallback: boolean;
  /**
   * Programs keep their ids: Python's asyncio checks its loop's pid, a recursive or error-checking
   * mutex names its owner by tid. So the dumped ones are preferred where they are free.
   */
  ids: IdChoice;
  /**
   * Where the dumped pid is in use, the process gets it in a new pid namespace (ids 'preferred'
   * or 'required'), instead of a new pid or an error.
   */
  pidNamespace: boolean;
  /** The restored process sees the host's CLOCK_MONOTONIC and CLOCK_BOOTTIME, not its own going on from the dump's. */
  hostClocks: boolean;
  /**
   * The image comes on our standard input: the restored process gets this file there instead (our
   * terminal, or /dev/null). null: ours.
   */
  stdinInstead: string | null;
  /** Signals the restorer was started with ignored (nohup): the process ignores them too where it left them at their default. */
  ignoredAtStart: ReadonlySet<number>;
  /** One line of warning for the user. */
  warn(line: string): void;
  /** Place private pages with UFFDIO_COPY where the kernel allows it (else process_vm_writev). */
  userfaultfd: boolean;
  /** Checked between page batches: once aborted, the restore stops and kills the stub. */
  signal?: AbortSignal;
  /** The restorer returns at once: the process gets a session of its own, else a process group in ours. */
  detached: boolean;
  /**
   * Not detached, whether the process stays in our process group instead of one of its own: that
   * of a script that runs us without job control, or of a pipeline, where the program would have
   * been. Asked once, as the process gets its group.
   */
  joinsOurGroup(): boolean;
  /**
   * Called with the process, in a process group of its own, just before it runs, and with the
   * modes of the terminal whose foreground job it was (a foreground restore hands it the terminal).
   */
  beforeRun?(pid: number, terminalModes: Buffer | null): void;
}

const VMAS_OFFSET = HEADER_SIZE + REGS_SIZE + MM_SIZE;

/** Restores the image read from fd; returns the pid of the running restored process (our child). */
export async function restoreImage(fd: number, options: RestoreOptions): Promise<number> {
  const input = new ImageInput(fd, options.signal);
  const reader = new ImageReader(input.chunks(), input.scatter);
  let stub: Stub | undefined;
  let memory: AddressSpace | undefined;
  const threads: number[] = [];
  try {
    const head = await reader.readHead();
    const vmas = planVmas(head, VMAS_OFFSET);
    stub = createStub({ stdin: options.stdinInstead, occupied: vmas, name: `restore-${process.pid}` });
    const streamed = new AddressSpace(stub.remote, vmas);
    memory = streamed;
    streamed.mapPlaceholders(options.userfaultfd);
    const writeAll = async (next: () => Promise<PageBatch | null>, write: (batch: PageBatch) => Promise<{ written: Promise<unknown> }>) => {
      for (let batch = await next(); batch; batch = await next()) {
        if (options.signal?.aborted) throw interrupted(options.signal);
        input.hold(batch.bytes.buffer, (await write(batch)).written);
      }
      await streamed.drainWrites();
    };
    await writeAll(() => reader.nextPages(), (batch) => streamed.writePages(batch));
    await writeAll(() => reader.nextSharedPages(), (batch) => streamed.writeSharedPages(batch));
    const extension = await reader.readExtension();
    if (extension) checkMappedFiles(extension.content.files, vmas, extension.offset);
    const ext = extension?.content ?? null;
    if (!ext) options.warn('the image has no extension: other threads, FPU state, signal handlers, open files and the working directory are not restored');
    if (ext?.children) {
      const n = ext.children.length;
      options.warn(`the process had ${n} child process${n === 1 ? '' : 'es'} at the dump (pid ${ext.children.join(', ')}): not restored, a wait for ${n === 1 ? 'it' : 'them'} finds none`);
    }
    if (options.ids === 'required' && !ext) throw new RestoreError('the image has no extension, which holds the pid: --same-pid cannot restore it');
    let threadIds: IdChoice = 'new';
    const moved = moveStub(stub, {
      ...(ext && options.ids !== 'new' ? { pid: { wanted: ext.threads[0].tid, required: options.ids === 'required', namespace: options.pidNamespace } } : {}),
      ...(ext?.clocks && !options.hostClocks ? { clocks: ext.clocks } : {}),
    }, options.warn);
    if (moved) {
      stub = moved.stub;
      memory = new AddressSpace(stub.remote, vmas); // the same plan, in the new process
      if (moved.hasPid) threadIds = moved.inNamespace ? 'required' : options.ids;
    }
    memory.mapSharedContents(ext?.sharedMemory ?? [], ext?.files ?? null, options.warn);
    await memory.attachFiles(ext?.files ?? null, ext?.mappedContents ?? [], { anonFallback: options.anonFallback, warn: options.warn });
    memory.placeVdso(ext?.auxv ?? null, stub.vdso, options.warn);
    memory.restoreProtections();
    // Before mlock (VMA_FLAGS), which the kernel refuses guard pages in.
    memory.installGuardPages(ext?.guardPages ?? [], options.warn);
    const remote = stub.remote;
    setMmMap(remote, head.mm, ext, options.warn);
    setName(remote, ext?.exe ?? programName(stub.pid, head.mm.argStart));
    // A job of the restorer's shell, or (detached) a session of its own: a process group left
    // behind by the restorer with a stopped process in it would get SIGHUP from the kernel
    // (an orphaned process group), which ends a process restored stopped.
    if (options.detached) remote.ownSession();
    else if (!options.joinsOurGroup()) remote.ownProcessGroup();
    if (ext) {
      const stdin = ext.fds.find((fd) => fd.fd === 0);
      if (options.stdinInstead === DEV_NULL && stdin && staysTheRestorers(stdin)) {
        options.warn(`fd 0 (${stdin.target}): the image came on the restorer's standard input, and it has no terminal to give instead: /dev/null in its place`);
      }
      setCwd(remote, ext.cwd, options.warn);
      if (ext.umask !== undefined) remote.umask(ext.umask);
      setSigactions(remote, ext.sigactions, options.ignoredAtStart);
      restoreFds(remote, ext.fds, ext.threads[0]?.identity, memory.carriedObjects(ext.files), options.warn);
      // After the files: a descriptor of a memfd maps its shared memory again, as a new VMA.
      if (ext.vmaFlags) memory.restoreVmaFlags(vmaFlagEntries(ext.vmaFlags), userfaultfdOf(ext), options.warn);
    }
    const fitted = fitThreadsXstate(ext?.threads ?? [], getRegset(remote.tid, NT_X86_XSTATE), options.warn);
    const others = fitted.slice(1).map(threadState);
    const seccompFilters = ext?.seccompFilters ?? [];
    if (fitted.some((t) => t.seccomp)) suspendSeccomp(remote);
    if (ext?.settings) setPersonality(remote, ext.settings.personality);
    createThreads(remote, others, threadIds, threads, options.warn);
    // The ids the process knows its threads by (in its pid namespace), for the calls it runs.
    const [leaderId, ...threadIdsInside] = [remote.tid, ...threads].map((tid) => ownId(tid));
    const held = others.map((state, i) => {
      const thread = remote.inThread(threads[i]);
      setOwnState(thread, threadIdsInside[i], state, options.warn);
      queuePendingSignals(thread, state.pendingSignals ?? [], leaderId, threadIdsInside[i], options.warn);
      // The last calls injected into this thread: from here on it has its own filters and credentials.
      const { scheduling, seccomp, identity } = fitted[i + 1];
      if (scheduling) setTimerSlack(thread, scheduling.timerSlackNs);
      if (seccomp) setSeccomp(thread, seccomp, seccompFilters);
      if (identity) setIdentity(thread, identity, false, options.warn);
      return { tid: threads[i], held: setThreadState(threads[i], state, options.warn) };
    });
    const leader = leaderState(head, fitted[0]);
    setOwnState(remote, leaderId, leader, options.warn);
    queuePendingSignals(remote, leader.pendingSignals ?? [], leaderId, leaderId, options.warn);
    queuePendingSignals(remote, ext?.sharedPendingSignals ?? [], leaderId, undefined, options.warn);
    setLimits(stub.pid, ext?.rlimits ?? [], options.warn);
    const restoredTids = new Map(ext ? ext.threads.map((t, i) => [t.tid, i === 0 ? leaderId : threadIdsInside[i - 1]]) : []);
    armTimers(remote, { itimers: ext?.itimers ?? [], posixTimers: ext?.posixTimers ?? [] }, restoredTids, options.warn);
    // The death signal that takes the half-made process along if we die goes last, but before
    // the leader's seccomp filter, which may refuse the prctl (a change of its ids would drop it).
    letLive(stub);
    // The last calls injected into the leader: once it has its own credentials, the restorer's
    // privileges are gone from it.
    if (fitted[0]?.scheduling) setTimerSlack(remote, fitted[0].scheduling.timerSlackNs);
    if (fitted[0]?.seccomp) setSeccomp(remote, fitted[0].seccomp, seccompFilters);
    if (fitted[0]?.identity) setIdentity(remote, fitted[0].identity, true, options.warn);
    setDumpable(remote, head.mm.flags);
    fitted.forEach(({ scheduling }, i) => { if (scheduling) setScheduling(i === 0 ? remote.tid : threads[i - 1], scheduling, options.warn); });
    if (ext?.settings) setOomScoreAdj(stub.pid, ext.settings.oomScoreAdj, options.warn);
    // The last moment a signal to the restorer abandons the restore: past it the process runs.
    if (options.signal?.aborted) throw interrupted(options.signal);
    options.beforeRun?.(stub.pid, foregroundTerminalModes(ext));
    releaseThreads(remote, stub.control, leader, held, ext?.stopped === true, options.warn);
    return stub.pid;
  } catch (err) {
    if (stub) killAndReap([...stubTids(stub), ...threads]);
    await memory?.release();
    throw err;
  } finally {
    await reader.close();
  }
}

/**
 * The userfaultfd a range registered at the dump is registered with again: the process's one, by
 * its lowest number (dups share it); with several, none, as the image does not say which.
 */
function userfaultfdOf(ext: ImageExtension): number | { none: string } {
  const distinct = ext.fds.filter((fd) => fd.userfaultfd?.features != null && fd.sharesWith === undefined);
  if (distinct.length === 1) return distinct[0].fd;
  if (distinct.length === 0) return { none: 'the image holds no userfaultfd of the process ready for registrations' };
  return { none: `the process had ${distinct.length} userfaultfds (fds ${distinct.map((fd) => fd.fd).join(', ')}), and the image does not say which one handled it` };
}

/** The modes of the terminal whose foreground job the process was (its controlling terminal). */
function foregroundTerminalModes(ext: ImageExtension | null): Buffer | null {
  return ext?.fds.find((fd) => fd.terminal?.foreground)?.terminal?.termios ?? null;
}

function threadState(t: ImageExtension['threads'][number]): ThreadState {
  return {
    tid: t.tid, regs: t.regs, tls: t.tls, sigmask: t.sigmask, fpregs: t.fpregs, xstate: t.xstate,
    clearChildTid: t.clearChildTid, robustList: t.robustList, rseq: t.rseq, sigaltstack: t.sigaltstack,
    pendingSignals: t.pendingSignals,
  };
}

/**
 * The dumped threads with XSAVE areas this CPU takes; one warning when the image's come from a CPU
 * with another layout and some features' state is lost.
 */
function fitThreadsXstate(threads: ImageExtension['threads'], local: Buffer, warn: (line: string) => void): ImageExtension['threads'] {
  let dropped = 0n;
  const fitted = threads.map((t) => {
    if (!t.xstate || t.xstate.length === 0) return t;
    const fit = fitXstate(t.xstate, local);
    dropped |= fit.dropped;
    return { ...t, xstate: fit.xstate };
  });
  if (dropped !== 0n) {
    warn(`the image's FPU state comes from a CPU with another XSAVE layout: x87, SSE and AVX registers restored, features 0x${dropped.toString(16)} reset (and code chosen for that CPU may use instructions this one lacks)`);
  }
  return fitted;
}

/** The leader's state: the extension's first thread, or, in a v0 image, its registers alone. */
function leaderState(head: ImageHead, dumped: ImageExtension['threads'][number] | undefined): ThreadState {
  if (dumped) return threadState(dumped);
  return { tid: 0, ...registersFromV0(head.regs) };
}
