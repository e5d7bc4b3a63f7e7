// One mapping of each kind coredump_filter and vma_dump_size tell apart, for the core tests.
// Works in <dir> (it chdirs there, so a kernel core dump of it lands there too) and maps:
//   sparse      64 MiB anonymous private, pages 0 and SPARSE_TOUCHED written ('S' + page % 16)
//   anonshared  4 pages MAP_SHARED|MAP_ANONYMOUS, written ('A')
//   dontdump    4 pages anonymous private, written ('N'), then MADV_DONTDUMP
//   untouched   16 pages anonymous private read-only (so it merges with nothing), never touched
//   data        data.bin (4 pages of 'D', mode 0600) private read-only: a file mapping never written
//   elf         elf.bin (starts with \x7fELF, mode 0600) private read-only: its first page is an ELF header
//   shared      shared.bin (4 pages of 's') MAP_SHARED, written ("shared write")
//   short       short.bin (1.5 pages of 'h') mapped 4 pages private, page 0 written: 2 pages past EOF
//   noread      2 pages anonymous private, written ('R'), then PROT_NONE: only a forced read gets them
// Prints: ready <sparse> <anonshared> <dontdump> <untouched> <data> <elf> <shared> <short> <noread> (hex)
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define SPARSE_BYTES (64UL << 20)
#define SPARSE_TOUCHED 4097

static int make_file(const char *name, const void *bytes, size_t length) {
  int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, bytes, length) != (ssize_t)length) { perror(name); return -1; }
  return fd;
}

static void *map_file(const char *name, char fill, size_t file_bytes, size_t map_bytes, int prot, int flags) {
  static char bytes[4 * PAGE];
  memset(bytes, fill, sizeof bytes);
  if (fill == 'E') memcpy(bytes, "\x7f" "ELF", 4);
  int fd = make_file(name, bytes, file_bytes);
  if (fd < 0) return MAP_FAILED;
  return mmap(NULL, map_bytes, prot, flags, fd, 0);
}

static void *map_anon(size_t bytes, int prot, int flags) {
  return mmap(NULL, bytes, prot, flags | MAP_ANONYMOUS, -1, 0);
}

// The kernel rewrites each thread's rseq area (cpu_id, mm_cid) whenever the thread returns to user
// space on another CPU, e.g. when a debugger detaches: on one CPU those bytes never change, so
// cores taken at different moments of a parked process compare byte for byte.
static void pin_to_one_cpu(void) {
  cpu_set_t allowed, one;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &allowed)) { CPU_SET(cpu, &one); break; }
  }
  sched_setaffinity(0, sizeof one, &one);
}

int main(int argc, char **argv) {
  if (argc < 2 || chdir(argv[1]) != 0) { fprintf(stderr, "usage: core_maps <dir>\n"); return 2; }
  pin_to_one_cpu();

  const int rw = PROT_READ | PROT_WRITE;
  char *sparse = map_anon(SPARSE_BYTES, rw, MAP_PRIVATE | MAP_NORESERVE);
  char *anonshared = map_anon(4 * PAGE, rw, MAP_SHARED);
  char *dontdump = map_anon(4 * PAGE, rw, MAP_PRIVATE);
  char *untouched = map_anon(16 * PAGE, PROT_READ, MAP_PRIVATE);
  char *data = map_file("data.bin", 'D', 4 * PAGE, 4 * PAGE, PROT_READ, MAP_PRIVATE);
  char *elf = map_file("elf.bin", 'E', 2 * PAGE, 2 * PAGE, PROT_READ, MAP_PRIVATE);
  char *shared = map_file("shared.bin", 's', 4 * PAGE, 4 * PAGE, rw, MAP_SHARED);
  char *shortmap = map_file("short.bin", 'h', PAGE + PAGE / 2, 4 * PAGE, rw, MAP_PRIVATE);
  char *noread = map_anon(2 * PAGE, rw, MAP_PRIVATE);
  char *maps[] = {sparse, anonshared, dontdump, untouched, data, elf, shared, shortmap, noread};
  for (unsigned i = 0; i < sizeof maps / sizeof maps[0]; i++) {
    if (maps[i] == MAP_FAILED) { perror("mmap"); return 1; }
  }

  memset(sparse, 'S', PAGE);
  memset(sparse + SPARSE_TOUCHED * (size_t)PAGE, 'S' + SPARSE_TOUCHED % 16, PAGE);
  memset(anonshared, 'A', 4 * PAGE);
  memset(dontdump, 'N', 4 * PAGE);
  if (madvise(dontdump, 4 * PAGE, MADV_DONTDUMP) != 0) { perror("madvise"); return 1; }
  strcpy(shared, "shared write");
  strcpy(shortmap, "short write");
  memset(noread, 'R', 2 * PAGE);
  if (mprotect(noread, 2 * PAGE, PROT_NONE) != 0) { perror("mprotect"); return 1; }

  printf("ready");
  for (unsigned i = 0; i < sizeof maps / sizeof maps[0]; i++) printf(" %lx", (unsigned long)(uintptr_t)maps[i]);
  printf("\n");
  fflush(stdout);
  for (;;) pause();
}
