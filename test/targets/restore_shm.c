// Shared memory without a file a restore could open again, for the SHARED_PAGES tests. Works in
// <dir> and maps, each 4 pages unless said:
//   anon   MAP_SHARED|MAP_ANONYMOUS: page 0 written ('a') by us, page 2 ('c') only by a forked
//          child (so it is in none of our page tables), pages 1 and 3 never touched
//   memfd  memfd "box" mapped read-only: page 1 written with pwrite ("memfd bytes"), never
//          through the mapping
//   sysv   SysV shm segment, 2 pages, page 0 written ('V'), removed (IPC_RMID) while attached
//   gone   gone.bin (2 pages of 'g') mapped MAP_SHARED, written ("deleted write"), then unlinked
// Prints: ready <anon> <memfd> <sysv> <gone> (hex)
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static void *fail(const char *what) {
  perror(what);
  return MAP_FAILED;
}

static void *map_anon(void) {
  char *anon = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) return fail("mmap anon");
  memset(anon, 'a', PAGE);
  pid_t child = fork();
  if (child == 0) {
    memset(anon + 2 * PAGE, 'c', PAGE);
    _exit(0);
  }
  if (child < 0 || waitpid(child, NULL, 0) != child) return fail("fork");
  return anon;
}

static void *map_memfd(void) {
  int fd = memfd_create("box", 0);
  if (fd < 0 || ftruncate(fd, 4 * PAGE) != 0) return fail("memfd");
  if (pwrite(fd, "memfd bytes", 11, PAGE) != 11) return fail("pwrite");
  return mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
}

static void *map_sysv(void) {
  int id = shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600);
  if (id < 0) return fail("shmget");
  char *sysv = shmat(id, NULL, 0);
  if (sysv == (void *)-1) return fail("shmat");
  memset(sysv, 'V', PAGE);
  if (shmctl(id, IPC_RMID, NULL) != 0) return fail("shmctl");
  return sysv;
}

static void *map_gone(void) {
  static char bytes[2 * PAGE];
  memset(bytes, 'g', sizeof bytes);
  int fd = open("gone.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, bytes, sizeof bytes) != (ssize_t)sizeof bytes) return fail("gone.bin");
  char *gone = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (gone == MAP_FAILED) return fail("mmap gone.bin");
  strcpy(gone, "deleted write");
  if (unlink("gone.bin") != 0) return fail("unlink");
  return gone;
}

int main(int argc, char **argv) {
  if (argc < 2 || chdir(argv[1]) != 0) { fprintf(stderr, "usage: restore_shm <dir>\n"); return 2; }
  void *maps[] = {map_anon(), map_memfd(), map_sysv(), map_gone()};
  for (unsigned i = 0; i < sizeof maps / sizeof maps[0]; i++) {
    if (maps[i] == MAP_FAILED) return 1;
  }
  printf("ready");
  for (unsigned i = 0; i < sizeof maps / sizeof maps[0]; i++) printf(" %lx", (unsigned long)(uintptr_t)maps[i]);
  printf("\n");
  fflush(stdout);
  for (;;) pause();
}
