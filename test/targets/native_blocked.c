// A single-threaded target blocked in a system call, for the register, memory and injection tests.
// First line: "ready <pid> <brk> <pattern address> <pattern length>" where brk is sbrk(0) after
// sbrk(12345) (so not page aligned) and the pattern fills 3 pages followed by a PROT_NONE page.
// SIGUSR1 prints "usr1".
//   native_blocked read     echoes each chunk read from stdin as "echo:<chunk>"; "error <errno>" if read fails
//   native_blocked sleep    prints "count <n>" after each 200 ms nanosleep; "error <errno>" if it fails
//   native_blocked zombie   forks a child that exits at once and is never waited for; prints its pid
//                           as a sixth field, then pauses
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define PATTERN_PAGES 3

static char stdout_buffer[BUFSIZ];

static void on_usr1(int sig) {
  (void)sig;
  write(1, "usr1\n", 5);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "read";
  // A static stdout buffer: stdio must not malloc, which would move brk after we print it.
  setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
  signal(SIGUSR1, on_usr1); // with SA_RESTART, as signal() sets it up
  sbrk(12345);
  void *brk_now = sbrk(0);
  unsigned char *pattern = mmap(NULL, (PATTERN_PAGES + 1) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pattern == MAP_FAILED) return 1;
  for (long i = 0; i < PATTERN_PAGES * PAGE; i++) pattern[i] = (unsigned char)(i * 7 + i / 251 + 13);
  mprotect(pattern + PATTERN_PAGES * PAGE, PAGE, PROT_NONE);

  pid_t zombie = 0;
  if (strcmp(mode, "zombie") == 0 && (zombie = fork()) == 0) _exit(0);

  printf("ready %d %p %p %d", getpid(), brk_now, (void *)pattern, PATTERN_PAGES * PAGE);
  if (zombie) printf(" %d", zombie);
  printf("\n");
  fflush(stdout);

  if (strcmp(mode, "read") == 0) {
    char buf[4096];
    for (;;) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n == 0) return 0;
      if (n < 0) {
        printf("error %d\n", errno);
        fflush(stdout);
        return 1;
      }
      printf("echo:%.*s", (int)n, buf);
      fflush(stdout);
    }
  }
  if (strcmp(mode, "sleep") == 0) {
    for (long n = 0;; n++) {
      struct timespec nap = {0, 200 * 1000 * 1000};
      if (nanosleep(&nap, NULL) != 0) {
        printf("error %d\n", errno);
        fflush(stdout);
        return 1;
      }
      printf("count %ld\n", n);
      fflush(stdout);
    }
  }
  for (;;) pause();
}
