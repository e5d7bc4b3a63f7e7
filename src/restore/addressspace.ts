// The restored task's memory, built in the stub in three steps that follow the image:
// 1. at the VMA list: every private VMA as an anonymous mapping at its address (the stack with
//    MAP_GROWSDOWN), so that pages can be written as they stream in;
// 2. at each batch of page records: the pages, placed with UFFDIO_COPY (pageplacer.ts) or, where
//    the kernel refuses a userfaultfd, written with process_vm_writev (a VMA that is not writable
//    is then made so for the time of the restore); then the page records of the extension's
//    SHARED_PAGES records, written into their shared VMAs mapped as shared anonymous memory;
// 3. at the extension: shared VMAs with contents in it mapped (those without pages); file-backed
//    VMAs mapped from their files again, with the dumped pages laid over them; the kernel's own
//    vDSO at the dumped address; the final protections; the guard pages; the madvise flags and mlock.

import koffi from 'koffi';
import { constants as fsConstants, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { ExtensionMappedFile, MappedContent, SharedMemoryContents, VmaFlags } from '../extension-model.js';
import { VMA_FLAGS, VMA_GROWSDOWN, VMA_LOCKED, VMA_LOCKONFAULT, VMA_SEALED, VMA_USERFAULT } from '../extension.js';
import type { DecodedVma } from '../format.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE, VMA_OFFSETS, VMA_SIZE } from '../format.js';
import { ImageFormatError, type ImageHead, type PageBatch } from '../imagestream.js';
import { maxMapCount } from '../proc/mapcount.js';
import { PAGE_SIZE } from '../model.js';
import { ANONYMOUS_HUGETLB_PATH, DELETED_SUFFIX, isDeleted, SECRET_MEMORY_PATH } from '../proc/deleted.js';
import { NativeError } from '../ptrace/errors.js';
import { readMemory, readMemoryForced } from '../ptrace/memory.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { uffdioRegister, UFFDIO_REGISTER, UFFDIO_REGISTER_MODE_WP } from '../ptrace/userfault.js';
import { RestoreError } from './errors.js';
import { CHANGED_SINCE_DUMP, changeSinceDump } from './filechange.js';
import { memfdHolding, memfdNameFor } from './lostfiles.js';
import { PagePlacer } from './pageplacer.js';
import { PageWriter } from './pagewriter.js';
import { USER_SPACE_END, type KernelVdso } from './stub.js';
import { O_CLOEXEC } from '../ptrace/remote.js';

const MAP_FIXED = 0x10;
const MAP_GROWSDOWN = 0x100;
const MAP_NORESERVE = 0x4000;
const MREMAP_MAYMOVE = 1;
const MREMAP_FIXED = 2;
const ARCH_MAP_VDSO_64 = 0x2003;
const AT_SYSINFO_EHDR = 33n;
const { O_RDONLY, O_RDWR } = fsConstants;
const { ENOMEM, ENOSYS, ESRCH } = osConstants.errno;
const MLOCK_ONFAULT = 1;
const MADV_GUARD_INSTALL = 102;
/** Bytes copied per round when dumped pages move into a file mapping. */
const COPY_CHUNK = 4 << 20;

export interface PlannedVma {
  /** Its VMA record: index and image offset, for errors. */
  index: number;
  at: number;
  start: number;
  end: number;
  prot: number;
  shared: boolean;
  /** Backed by a file (not MAP_ANONYMOUS) in the dumped task. */
  file: boolean;
  /** The file offset it maps, in bytes. */
  offset: number;
  /** The main stack: the VMA that holds mm.start_stack. */
  stack: boolean;
  /** Mapped anonymous while the pages stream in (every private VMA). */
  placeholder: boolean;
  /** PROT_WRITE was added for the page writes: taken away at the end. */
  madeWritable: boolean;
  /**
   * Replaced by a kernel special mapping ([vdso], [vvar]), or made as secret memory: its
   * protection and flags are the kernel's.
   */
  special: boolean;
  /** Dumped page ranges, as start/end pairs: what a file mapping gets laid over. */
  dumped: number[];
  /** Shared, with contents in the image (SHARED_PAGES): mapped as shared anonymous memory. */
  carried: boolean;
}

/** A shared VMA whose contents the image carried, with the object it mapped (MAPPED_FILE's device and inode). */
export interface MappedObject {
  start: number;
  end: number;
  prot: number;
  /** The offset in the object, in bytes. */
  offset: number;
  dev: bigint;
  inode: bigint;
}

export interface FileOptions {
  /** Map a file that changed or vanished as anonymous memory (with a warning) instead of failing. */
  anonFallback: boolean;
  warn(line: string): void;
}

const hex = (v: number): string => `0x${v.toString(16)}`;
const range = (v: { start: number; end: number }): string => `${hex(v.start)}-${hex(v.end)}`;

/**
 * Checks what the format allows but no restore can do (addresses outside user space, more VMAs
 * than a process may have) and turns the VMA records into the plan. vmasOffset: the image offset
 * of the first VMA record.
 */
export function planVmas(head: ImageHead, vmasOffset: number): PlannedVma[] {
  const maxVmas = maxMapCount();
  if (head.vmas.length > maxVmas) {
    throw new ImageFormatError(vmasOffset + maxVmas * VMA_SIZE, `${head.vmas.length} VMAs, more than a process may have here (vm.max_map_count = ${maxVmas})`);
  }
  const startStack = Number(head.mm.startStack);
  return head.vmas.map((vma: DecodedVma, i): PlannedVma => {
    const at = vmasOffset + i * VMA_SIZE;
    if (vma.end > BigInt(USER_SPACE_END)) {
      throw new ImageFormatError(at, `vma #${i} 0x${vma.start.toString(16)}-0x${vma.end.toString(16)} ends above the user address space (${hex(USER_SPACE_END)})`);
    }
    const start = Number(vma.start);
    const end = Number(vma.end);
    const shared = (vma.flags & MAP_SHARED) !== 0;
    const file = (vma.flags & MAP_ANONYMOUS) === 0;
    if (file && vma.pgoff * BigInt(PAGE_SIZE) + (vma.end - vma.start) > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ImageFormatError(at + VMA_OFFSETS.pgoff, `vma #${i} ${range({ start, end })}: pgoff 0x${vma.pgoff.toString(16)} puts it past any file offset`);
    }
    return {
      index: i, at, start, end, prot: vma.prot, shared, file,
      offset: Number(vma.pgoff) * PAGE_SIZE,
      stack: start <= startStack && startStack < end,
      placeholder: !shared, madeWritable: false, special: false, dumped: [], carried: false,
    };
  });
}

export class AddressSpace {
  private readonly writer: PageWriter;
  private placer: PagePlacer | null = null;

  constructor(private readonly remote: RemoteTask, readonly vmas: PlannedVma[]) {
    this.writer = new PageWriter(remote.tid);
  }

  private get pid(): number {
    return this.remote.tid;
  }

  /**
   * Step 1: an anonymous mapping for every private VMA (shared ones wait for their file or their
   * SHARED_PAGES record). A VMA with v0 flags MAP_SHARED|MAP_ANONYMOUS (imgfs writes shared
   * anonymous memory as the proposal did, a shared file VMA: see attachFiles) has no file to wait for.
   * usePlacer: place private pages with UFFDIO_COPY where the kernel allows it.
   */
  mapPlaceholders(usePlacer: boolean): void {
    if (usePlacer) this.placer = PagePlacer.open(this.remote);
    for (const vma of this.vmas) {
      if (vma.shared) {
        if (!vma.file) this.mapAnonymousShared(vma);
        continue;
      }
      const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (vma.stack ? MAP_GROWSDOWN : 0);
      this.mapPrivatePlaceholder(vma, flags);
    }
  }

  /**
   * A reservation larger than the kernel's overcommit heuristic allows (a runtime's 64 GiB heap,
   * which it mapped MAP_NORESERVE: the image does not say so), or one larger than this machine's
   * memory, is refused ENOMEM: mapped MAP_NORESERVE then, its commit charge not taken up front.
   */
  private mapPrivatePlaceholder(vma: PlannedVma, flags: number): void {
    try {
      this.remote.mmap(vma.start, vma.end - vma.start, vma.prot, flags);
    } catch (err) {
      if (!(err instanceof NativeError) || err.errno !== ENOMEM) throw err;
      this.remote.mmap(vma.start, vma.end - vma.start, vma.prot, flags | MAP_NORESERVE);
    }
  }

  /**
   * Step 2: starts writing a batch of page records into their VMAs. Resolves once the writes
   * are under way, with their end (wrapped: a bare promise would be awaited too): until then
   * the batch's bytes must stay put.
   */
  writePages(batch: PageBatch): Promise<{ written: Promise<unknown> }> {
    const placer = this.placer;
    for (let i = 0; i < batch.count; i++) {
      const vma = this.vmas[batch.vmaIndexes[i]];
      noteDumped(vma, batch.vaddrs[i]);
      placer?.prepare(vma.start, vma.end);
    }
    if (!placer) return this.write(batch);
    return Promise.resolve({ written: placer.place(batch) });
  }

  /**
   * Step 2, for the extension's SHARED_PAGES records: as writePages, into the shared VMA of the
   * record, mapped as shared anonymous memory on its first page.
   */
  writeSharedPages(batch: PageBatch): Promise<{ written: Promise<unknown> }> {
    for (let i = 0; i < batch.count; i++) this.carry(this.vmas[batch.vmaIndexes[i]]);
    return this.write(batch);
  }

  /** Maps a shared VMA whose contents the image carries, once; a v0 anonymous one is mapped already. */
  private carry(vma: PlannedVma): void {
    if (vma.carried) return;
    if (vma.file) this.mapAnonymousShared(vma);
    vma.carried = true;
  }

  /** Writes the batch's pages with process_vm_writev. */
  private async write(batch: PageBatch): Promise<{ written: Promise<unknown> }> {
    const base = Number(koffi.address(batch.bytes)) + batch.firstPage;
    const started: Promise<void>[] = [];
    let segments = await this.writer.segments();
    for (let i = 0; i < batch.count; i++) {
      const vaddr = batch.vaddrs[i];
      const vma = this.vmas[batch.vmaIndexes[i]];
      if (!(vma.prot & PROT_WRITE) && !vma.madeWritable) {
        this.remote.mprotect(vma.start, vma.end - vma.start, vma.prot | PROT_WRITE);
        vma.madeWritable = true;
      }
      if (segments.local.full || segments.remote.full) {
        started.push(this.writer.submit(segments, [batch.bytes]));
        segments = await this.writer.segments();
      }
      segments.local.add(base + i * batch.stride, PAGE_SIZE);
      segments.remote.add(vaddr, PAGE_SIZE);
    }
    started.push(this.writer.submit(segments, [batch.bytes]));
    return { written: Promise.all(started) };
  }

  /** The end of step 2: every page written, the VMAs back to ordinary faults. Throws the first failure. */
  async drainWrites(): Promise<void> {
    const placer = this.placer;
    this.placer = null;
    await placer?.finish();
    await this.writer.drain();
  }

  /** Lets go of what a failed restore leaves open here, once the task is killed. */
  async release(): Promise<void> {
    const placer = this.placer;
    this.placer = null;
    await placer?.abandon();
  }

  /**
   * Step 3a: the shared VMAs whose contents the image carries, each mapped as shared anonymous
   * memory (those without pages are mapped now); a file behind one (memfd, SysV shm, a deleted
   * file) is named in a warning: its contents are back, not its sharing with other processes.
   * Shared anonymous memory of v0 without a record starts zeroed, with a warning. records: the
   * extension's SHARED_PAGES contents; files: its MAPPED_FILE records (null without an extension).
   */
  mapSharedContents(records: readonly SharedMemoryContents[], files: readonly ExtensionMappedFile[] | null, warn: (line: string) => void): void {
    const carried = new Set(records.map((r) => r.start));
    const paths = new Map((files ?? []).map((f) => [f.start, f.path] as const));
    for (const vma of this.vmas.filter((v) => v.shared)) {
      if (!carried.has(vma.start)) {
        if (!vma.file) warn(startsZeroed(vma));
        continue;
      }
      this.carry(vma);
      const path = paths.get(vma.start);
      if (vma.file && path !== SHARED_ANONYMOUS_PATH && path !== ANONYMOUS_HUGETLB_PATH) {
        warn(`${path}: shared memory mapped at ${range(vma)} comes back with its contents, as the process's own: a process that shared it at the dump, if any, does not share it now`);
      }
    }
    this.joinMappingsOfOneObject(files ?? [], warn);
  }

  /**
   * The carried VMAs that mapped a file (a memfd, a deleted file, a SysV segment), with its device
   * and inode: a descriptor of the same file maps them from the one it is made again as
   * (lostfiles.ts). files: the extension's MAPPED_FILE records.
   */
  carriedObjects(files: readonly ExtensionMappedFile[]): MappedObject[] {
    const byStart = new Map(this.vmas.map((v) => [v.start, v] as const));
    return files.flatMap((file) => {
      const vma = byStart.get(file.start);
      return vma?.carried ? [{ start: vma.start, end: vma.end, prot: vma.prot, offset: vma.offset, dev: file.dev, inode: file.inode }] : [];
    });
  }

  /**
   * Carried VMAs that mapped one object (a memfd or SysV segment mapped twice, shared anonymous
   * memory that mremap with old size 0 mapped again: one device and inode) map one memory again,
   * so that a write through one is seen through the other: each is made a second mapping of the
   * part of another that holds its offsets (mremap with old size 0), its own copy let go. The
   * largest come first, wherever they lie: one that keeps its own copy is never made a second
   * mapping afterwards, which would part it from those mapped from it.
   */
  private joinMappingsOfOneObject(files: readonly ExtensionMappedFile[], warn: (line: string) => void): void {
    const byObject = new Map<string, PlannedVma[]>();
    for (const file of files) {
      const vma = this.vmas.find((v) => v.start === file.start);
      if (!vma?.carried) continue;
      const key = `${file.dev}:${file.inode}`;
      byObject.set(key, [...(byObject.get(key) ?? []), vma]);
    }
    for (const mappings of byObject.values()) {
      const kept: PlannedVma[] = [];
      for (const vma of mappings.sort((a, b) => (b.end - b.start) - (a.end - a.start) || a.start - b.start)) {
        const length = vma.end - vma.start;
        const holder = kept.find((k) => k.offset <= vma.offset && vma.offset + length <= k.offset + (k.end - k.start));
        if (!holder) {
          if (kept.length > 0) {
            warn(`shared memory mapped at ${range(vma)} and at ${range(kept[0])} is one object, but neither holds all of the other's part of it: they come back as two copies, a write through one not seen through the other`);
          }
          kept.push(vma);
          continue;
        }
        const at = holder.start + (vma.offset - holder.offset);
        this.remote.mremap(at, 0, length, MREMAP_MAYMOVE | MREMAP_FIXED, vma.start);
        this.remote.mprotect(vma.start, length, vma.prot); // a new mapping takes the protection of the one it maps again
      }
    }
  }

  /**
   * Step 3b: every file-backed VMA mapped from its file, when the file is the one of the dump
   * (same size and mtime, wherever it lives now; a shared one also as it is now, with a warning);
   * the dumped pages are laid over private ones. files: the extension's MAPPED_FILE records, or
   * null for an image without an extension (file VMAs then keep only their dumped pages);
   * contents: its MAPPED_CONTENT records, the deleted files mapped privately, made again.
   */
  async attachFiles(files: readonly ExtensionMappedFile[] | null, contents: readonly MappedContent[], options: FileOptions): Promise<void> {
    const fileVmas = this.vmas.filter((v) => v.file && !v.carried);
    if (fileVmas.length === 0) return;
    const madeAgain = new MadeAgain(this.remote, contents);
    try {
      await this.attachFilesMadeAgain(fileVmas, files, madeAgain, options);
    } finally {
      madeAgain.close();
    }
  }

  private async attachFilesMadeAgain(fileVmas: PlannedVma[], files: readonly ExtensionMappedFile[] | null, madeAgain: MadeAgain, options: FileOptions): Promise<void> {
    if (files === null) {
      options.warn(`the image has no extension: ${fileVmas.length} file-backed VMAs hold only their dumped pages (untouched pages read as zeros), shared ones start empty`);
      for (const vma of fileVmas.filter((v) => v.shared)) this.mapAnonymousShared(vma);
      return;
    }
    const byStart = new Map(files.map((f) => [f.start, f] as const));
    const problems = new Map<string, string | null>();
    const warned = new Set<string>();
    // Shared VMAs first: until mapped they are holes where a temporary mapping could land.
    for (const vma of [...fileVmas.filter((v) => v.shared), ...fileVmas.filter((v) => !v.shared)]) {
      const file = byStart.get(vma.start)!; // checkMappedFiles vouches for it
      if (vma.shared && file.path === SHARED_ANONYMOUS_PATH) {
        this.mapSharedAnonymous(vma, options.warn);
        continue;
      }
      if (vma.shared && file.path === SECRET_MEMORY_PATH) {
        this.mapSecretMemory(vma, file.size, options.warn);
        continue;
      }
      // Its placeholder, with the dumped pages, is the memory; huge pages are not made again (a
      // machine need not have any reserved, and pages are placed one by one).
      if (!vma.shared && file.path === ANONYMOUS_HUGETLB_PATH) {
        if (!warned.has(file.path)) options.warn(`memory mapped with MAP_HUGETLB (at ${range(vma)}) comes back in ordinary pages`);
        warned.add(file.path);
        continue;
      }
      const path = unescapePath(file.path);
      const made = vma.shared ? null : madeAgain.of(file, path);
      if (made) {
        await this.mapFile(vma, made.path, made.size);
        continue;
      }
      if (!problems.has(path)) problems.set(path, fileProblem(path, file));
      const problem = problems.get(path);
      if (!problem) {
        await this.mapFile(vma, path, isCharacterDevice(path) ? null : file.size);
        continue;
      }
      // A file mapped shared holds its bytes itself, and the process (or another) may well have
      // written it since the dump: it is mapped as it is now, with a warning, as an open file is.
      if (vma.shared && problem.startsWith(CHANGED_SINCE_DUMP)) {
        if (!warned.has(path)) options.warn(`${file.path}: ${problem}: mapped shared as it is now (at ${range(vma)})`);
        warned.add(path);
        await this.mapFile(vma, path, Number(statSync(path).size));
        continue;
      }
      if (!options.anonFallback) {
        throw new RestoreError(`${file.path}: ${problem} (mapped at ${range(vma)}); --anon-fallback maps it as anonymous memory instead`);
      }
      if (!warned.has(path)) options.warn(`${file.path}: ${problem}: mapped as anonymous memory (--anon-fallback): what the image carries of it (its private pages in memory at the dump) comes back, the rest reads as zeros`);
      warned.add(path);
      if (vma.shared) this.mapAnonymousShared(vma);
    }
  }

  /** Shared anonymous memory without a SHARED_PAGES record (an older image): it comes back zeroed. */
  private mapSharedAnonymous(vma: PlannedVma, warn: (line: string) => void): void {
    warn(startsZeroed(vma));
    this.mapAnonymousShared(vma);
  }

  /**
   * memfd_secret memory: no process but its own can read it, so the image holds none of its
   * bytes. It comes back as new secret memory of the size it had, zeroed; on a kernel without
   * secret memory (ENOSYS: disabled at boot), as shared anonymous memory. Each VMA gets memory of
   * its own: two mappings of one secret memory no longer share it (it is zeroed anyway).
   */
  private mapSecretMemory(vma: PlannedVma, size: number, warn: (line: string) => void): void {
    const what = `memfd_secret memory at ${range(vma)}: no other process may read it, so the image holds none of its bytes`;
    let fd: number;
    try {
      fd = this.remote.memfdSecret(O_CLOEXEC);
    } catch (err) {
      if ((err as NativeError).errno !== ENOSYS) throw err;
      warn(`${what}, and this kernel has no secret memory: it comes back as shared memory, zeroed, that is not secret`);
      this.mapAnonymousShared(vma);
      return;
    }
    try {
      this.remote.ftruncate(fd, size);
      this.remote.mmap(vma.start, vma.end - vma.start, vma.prot, MAP_SHARED | MAP_FIXED, fd, vma.offset);
    } finally {
      this.remote.close(fd);
    }
    vma.special = true; // locked and left out of cores by the kernel itself, as its flags say
    warn(`${what}: it comes back as new secret memory, zeroed`);
  }

  private mapAnonymousShared(vma: PlannedVma): void {
    this.remote.mmap(vma.start, vma.end - vma.start, vma.prot, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
  }

  /** fileSize: null for a device (a private mapping of /dev/zero is memory, with no end of file). */
  private async mapFile(vma: PlannedVma, path: string, fileSize: number | null): Promise<void> {
    const offset = vma.offset;
    const length = vma.end - vma.start;
    // A page of a private file mapping lies within the file (past its end is SIGBUS, not memory).
    const lastDumped = vma.dumped[vma.dumped.length - 1];
    const fileEnd = fileSize === null ? Infinity : vma.start + Math.ceil(fileSize / PAGE_SIZE) * PAGE_SIZE - offset;
    if (lastDumped !== undefined && lastDumped > fileEnd) {
      throw new ImageFormatError(vma.at + VMA_OFFSETS.pgoff,
        `vma #${vma.index} ${range(vma)}: its dumped pages reach ${hex(lastDumped)}, past the end of ${path} (${fileSize} bytes mapped from offset ${hex(offset)} end at ${hex(Math.max(vma.start, fileEnd))})`);
    }
    const writableShared = vma.shared && (vma.prot & PROT_WRITE) !== 0;
    const fd = this.remote.openat(path, (writableShared ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    try {
      if (vma.shared || vma.dumped.length === 0) {
        this.remote.mmap(vma.start, length, vma.prot, (vma.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, fd, offset);
        vma.madeWritable = false;
        return;
      }
      // The dumped pages are in the placeholder: build the file mapping elsewhere, copy them
      // over, and move it into place (mremap replaces the placeholder in one step).
      const temporary = this.remote.mmap(0, length, vma.prot | PROT_WRITE, MAP_PRIVATE, fd, offset);
      await this.copyDumpedPages(vma, temporary);
      this.remote.mremap(temporary, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, vma.start);
      vma.madeWritable = !(vma.prot & PROT_WRITE);
    } finally {
      this.remote.close(fd);
    }
  }

  private async copyDumpedPages(vma: PlannedVma, temporary: number): Promise<void> {
    for (let r = 0; r < vma.dumped.length; r += 2) {
      for (let at = vma.dumped[r]; at < vma.dumped[r + 1]; at += COPY_CHUNK) {
        const length = Math.min(COPY_CHUNK, vma.dumped[r + 1] - at);
        // Forced: a private file mapping the process made PROT_NONE keeps its written pages.
        const pages = readMemoryForced(this.pid, at, length);
        const segments = await this.writer.segments();
        segments.local.add(Number(koffi.address(pages)), length);
        segments.remote.add(temporary + (at - vma.start), length);
        await this.writer.submit(segments, [pages]);
      }
    }
    await this.writer.drain();
  }

  /**
   * Step 3c: the kernel's vDSO (and its data pages) at the dumped address, where the task's
   * code expects it: only if the image's vDSO is this kernel's, byte for byte, in the same
   * layout. Otherwise the dumped copy stays, with warning: its data pages cannot be dumped, so
   * its clock functions fall back to system calls.
   */
  placeVdso(auxv: Buffer | null, kernel: KernelVdso | null, warn: (line: string) => void): void {
    if (!kernel) return;
    const textIndex = kernel.mappings.findIndex((m) => m.name === '[vdso]');
    const text = kernel.mappings[textIndex];
    const size = text.end - text.start;
    const dumpedAt = auxv ? auxvValue(auxv, AT_SYSINFO_EHDR) : null;
    const candidates = dumpedAt !== null
      ? this.vmas.filter((v) => v.start === dumpedAt)
      : this.vmas.filter((v) => !v.file && !v.shared && v.prot === (PROT_READ | PROT_EXEC) && v.end - v.start === size);
    for (const vma of candidates) {
      const group = kernel.mappings.map((m) => this.vmas.find((v) => v.start === vma.start + (m.start - text.start) && v.end === vma.start + (m.end - text.start)));
      const sameLayout = group.every((v) => v !== undefined && !v.file && !v.shared) && vma.end - vma.start === size;
      if (sameLayout && this.holdsCode(vma, kernel.text, dumpedAt !== null)) {
        this.mapKernelVdso(group as PlannedVma[], vma.start);
        return;
      }
    }
    // Only a VMA at the auxiliary vector's address was a vDSO: with none there, the process had
    // unmapped it (a sandbox, say), and nothing is missing.
    if (candidates.length > 0 && dumpedAt !== null) warn(`the image's vDSO at ${hex(dumpedAt)} is not this kernel's: keeping the dumped copy (clock functions fall back to system calls)`);
  }

  /**
   * Whether every dumped page of vma equals the same page of code. Pages never touched were not
   * dumped; with no page at all, only the auxiliary vector's word (trusted) can vouch for it.
   */
  private holdsCode(vma: PlannedVma, code: Buffer, vouched: boolean): boolean {
    if (vma.dumped.length === 0) return vouched;
    for (let r = 0; r < vma.dumped.length; r += 2) {
      const from = vma.dumped[r] - vma.start;
      const to = vma.dumped[r + 1] - vma.start;
      if (!readMemory(this.pid, vma.dumped[r], to - from).equals(code.subarray(from, to))) return false;
    }
    return true;
  }

  private mapKernelVdso(group: PlannedVma[], textStart: number): void {
    const first = group[0].start;
    const last = group[group.length - 1].end;
    this.remote.munmap(first, last - first);
    this.remote.archPrctl(ARCH_MAP_VDSO_64, first);
    const maps = readFileSync(`/proc/${this.pid}/maps`, 'latin1');
    if (!new RegExp(`^0*${textStart.toString(16)}-[0-9a-f]+ .*\\[vdso\\]$`, 'm').test(maps)) {
      throw new RestoreError(`the kernel placed the vDSO elsewhere than ${hex(textStart)}`);
    }
    for (const vma of group) vma.special = true;
  }

  /**
   * Step 3f: each VMA's madvise flags, mlock, userfaultfd registration and seal (the extension's
   * VMA_FLAGS), but on the kernel's own mappings; the seal last, as it forbids changes. One
   * warning per kind of flag the kernel refuses (mlock over RLIMIT_MEMLOCK, MADV_MERGEABLE without
   * KSM, mseal before 6.10), and the restore goes on. MAP_GROWSDOWN is given at the mapping, for
   * the stack: elsewhere it is not made again (the mapping is made before the extension is read),
   * one warning. userfaultfd: the number of the process's userfaultfd, restored, or why there is
   * none to register ranges with (smaps does not tell which one a range was registered with,
   * should the process have had several, and a wrong one would leave its faults to no handler).
   */
  restoreVmaFlags(entries: readonly VmaFlags[], userfaultfd: number | { none: string }, warn: (line: string) => void): void {
    const byStart = new Map(this.vmas.map((v) => [v.start, v] as const));
    const refused = new Set<string>();
    const refuse = (name: string, vma: PlannedVma, why: string) => {
      if (!refused.has(name)) warn(`${name} is not restored on ${range(vma)}: ${why} (later refusals of it are not reported)`);
      refused.add(name);
    };
    const attempt = (name: string, vma: PlannedVma, change: () => void) => {
      try {
        change();
      } catch (err) {
        if (!(err instanceof NativeError) || err.errno === ESRCH) throw err;
        refuse(name, vma, err.message);
      }
    };
    const length = (vma: PlannedVma) => vma.end - vma.start;
    for (const { start, flags } of entries) {
      const vma = byStart.get(start);
      if (!vma) throw new RestoreError(`the extension's VMA_FLAGS names a VMA at ${hex(start)}, which is in no VMA record`);
      if (vma.special) continue;
      for (const flag of VMA_FLAGS.filter((f) => (flags & f.bit) !== 0 && f.advice !== null)) {
        attempt(flag.name, vma, () => this.remote.madvise(vma.start, length(vma), flag.advice!));
      }
      if (flags & VMA_LOCKED) attempt('locked', vma, () => this.remote.mlock2(vma.start, length(vma), flags & VMA_LOCKONFAULT ? MLOCK_ONFAULT : 0));
      if (flags & VMA_GROWSDOWN && !vma.stack) refuse('growsdown', vma, 'MAP_GROWSDOWN is given when memory is mapped, before the image says it: it grows no more');
      // Its modes are UFFDIO_REGISTER's: missing 1, wp 2, minor 4.
      const mode = VMA_USERFAULT.reduce((modes, bit, i) => (flags & bit ? modes | (1 << i) : modes), 0);
      if (mode !== 0) {
        if (typeof userfaultfd !== 'number') {
          refuse('userfaultfd registration', vma, `${userfaultfd.none}: left unregistered, its untouched pages read as zeros`);
        } else {
          attempt('userfaultfd registration', vma, () => this.remote.ioctlWithData(userfaultfd, UFFDIO_REGISTER, uffdioRegister(vma.start, length(vma), mode)));
          // Which pages were write-protected is per page (UFFDIO_WRITEPROTECT), not in the image.
          if (mode & UFFDIO_REGISTER_MODE_WP) refuse('userfaultfd write protection', vma, 'the pages it had write-protected are writable: their writes reach no handler');
        }
      }
      if (flags & VMA_SEALED) attempt('sealed', vma, () => this.remote.mseal(vma.start, length(vma)));
    }
  }



  /**
   * Step 3e: the guard pages (GUARD_PAGES), installed again with MADV_GUARD_INSTALL: a stray access
   * to one faults, as before. One warning where the kernel refuses them (before 6.13, or a mapping
   * it takes none in), and the restore goes on: the pages read as zeros then.
   */
  installGuardPages(runs: readonly [number, number][], warn: (line: string) => void): void {
    for (const [start, end] of runs) {
      if (!this.vmas.some((v) => v.start <= start && start < v.end) || !this.vmas.some((v) => v.start < end && end <= v.end)) {
        throw new RestoreError(`the extension's guard pages ${range({ start, end })} lie outside the VMAs`);
      }
      try {
        this.remote.madvise(start, end - start, MADV_GUARD_INSTALL);
      } catch (err) {
        if (!(err instanceof NativeError) || err.errno === ESRCH) throw err;
        warn(`guard pages ${range({ start, end })} are not restored (${err.code}): they read as zeros instead of faulting`);
      }
    }
  }

  /** Step 3d: the protections of the dump, for every VMA the restore made writable. */
  restoreProtections(): void {
    for (const vma of this.vmas) {
      if (vma.madeWritable && !vma.special) this.remote.mprotect(vma.start, vma.end - vma.start, vma.prot);
    }
  }
}

/**
 * The deleted files the process mapped privately whose bytes the image carries (MAPPED_CONTENT),
 * each made again once, as a memfd in the stub, to be mapped from: a program or library deleted
 * or replaced (an upgrade) since the process started.
 */
class MadeAgain {
  private readonly byObject: Map<string, MappedContent>;
  private readonly made = new Map<string, number>();

  constructor(private readonly remote: RemoteTask, contents: readonly MappedContent[]) {
    this.byObject = new Map(contents.map((c) => [`${c.dev}:${c.inode}`, c]));
  }

  /** The file to map vma's file from, made on first use; null where its path leads to it or the image lacks its bytes. */
  of(file: ExtensionMappedFile, path: string): { path: string; size: number } | null {
    if (!isDeleted(path)) return null;
    const key = `${file.dev}:${file.inode}`;
    const content = this.byObject.get(key);
    if (!content) return null;
    let fd = this.made.get(key);
    if (fd === undefined) {
      fd = memfdHolding(this.remote, memfdNameFor(path.slice(0, -DELETED_SUFFIX.length)), Buffer.isBuffer(content.bytes) ? content.bytes : content.bytes.read());
      this.made.set(key, fd);
    }
    return { path: `/proc/self/fd/${fd}`, size: content.bytes.length };
  }

  /** The mappings hold the files now. */
  close(): void {
    for (const fd of this.made.values()) this.remote.close(fd);
  }
}

/**
 * Checks that the extension's MAPPED_FILE records match the file-backed VMAs one to one, as the
 * format says; at: the extension's image offset.
 */
export function checkMappedFiles(files: readonly ExtensionMappedFile[], vmas: readonly PlannedVma[], at: number): void {
  const fileVmas = vmas.filter((v) => v.file);
  const mismatch = fileVmas.findIndex((v, i) => files[i]?.start !== v.start || files[i]?.end !== v.end);
  if (mismatch >= 0) {
    throw new ImageFormatError(at, `the extension's mapped file #${mismatch} does not match the file-backed VMA ${range(fileVmas[mismatch])}`);
  }
  if (files.length > fileVmas.length) {
    throw new ImageFormatError(at, `the extension names ${files.length} mapped files for ${fileVmas.length} file-backed VMAs`);
  }
}

const startsZeroed = (vma: PlannedVma): string =>
  `shared anonymous memory ${range(vma)}: the image carries no contents for it (an older image), so it starts zeroed`;

/** Extends the VMA's dumped ranges by the page at vaddr (pages arrive ascending). */
function noteDumped(vma: PlannedVma, vaddr: number): void {
  const n = vma.dumped.length;
  if (n > 0 && vma.dumped[n - 1] === vaddr) vma.dumped[n - 1] = vaddr + PAGE_SIZE;
  else vma.dumped.push(vaddr, vaddr + PAGE_SIZE);
}

function isCharacterDevice(path: string): boolean {
  try {
    return statSync(path).isCharacterDevice();
  } catch {
    return false;
  }
}

/** maps escapes a newline in a path as \012. */
function unescapePath(path: string): string {
  return path.replace(/\\012/g, '\n');
}

/**
 * What maps shows for MAP_SHARED|MAP_ANONYMOUS memory (and for MAP_SHARED of /dev/zero): the
 * kernel backs it with an unlinked shmem file named dev/zero. It is memory, not a file to reopen.
 */
const SHARED_ANONYMOUS_PATH = `/dev/zero${DELETED_SUFFIX}`;

/** Why the file at path is not the one the dump mapped; null when it is. */
function fileProblem(path: string, recorded: ExtensionMappedFile): string | null {
  if (!path.startsWith('/')) return 'is not a file that can be opened again';
  if (isDeleted(path)) return 'was deleted before the dump';
  let st: BigIntStats;
  try {
    st = statSync(path, { bigint: true });
  } catch (err) {
    return `cannot be opened again (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  return changeSinceDump(st, recorded);
}

function auxvValue(auxv: Buffer, type: bigint): number | null {
  for (let at = 0; at + 16 <= auxv.length; at += 16) {
    if (auxv.readBigUInt64LE(at) === type) return Number(auxv.readBigUInt64LE(at + 8));
  }
  return null;
}
