// Maps <file> (created here: FILE_PAGES pages, page p filled with the byte 'A' + p) privately
// and writable, modifies pages 1 and 3, reads pages 0 and 2, and never touches the others: a
// dump carries only the touched pages, a restore must take the rest from the file. Then waits
// for SIGUSR1 (a handler a restore must bring back), and from then on prints, every 100 ms, a
// checksum of the whole mapping and the text of page 1.
// Prints: ready <map-address-hex> <checksum-hex>
// then, after SIGUSR1: map <checksum-hex> <page-1-text>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define FILE_PAGES 16

static uint64_t checksum(const volatile unsigned char *map) {
  uint64_t sum = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < FILE_PAGES * PAGE; i += 16) sum = (sum ^ map[i]) * 0x100000001b3ull;
  return sum;
}

static volatile sig_atomic_t go;

static void on_usr1(int signal) {
  (void)signal;
  go = 1;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: restore_filemap <file>\n"); return 2; }
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) { perror(argv[1]); return 1; }
  char page[PAGE];
  for (int p = 0; p < FILE_PAGES; p++) {
    memset(page, 'A' + p, PAGE);
    if (write(fd, page, PAGE) != PAGE) { perror("write"); return 1; }
  }
  volatile unsigned char *map = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) { perror("mmap"); return 1; }
  close(fd);
  snprintf((char *)map + 1 * PAGE, 64, "modified-page-1");
  snprintf((char *)map + 3 * PAGE, 64, "modified-page-3");
  if (map[0] != 'A' || map[2 * PAGE] != 'C') return 1; // reads pages 0 and 2
  // The checksum of the mapping would touch every page: compute the expected one from a copy.
  static unsigned char copy[FILE_PAGES * PAGE];
  int again = open(argv[1], O_RDONLY);
  if (again < 0 || read(again, copy, sizeof copy) != sizeof copy) { perror("read"); return 1; }
  close(again);
  memcpy(copy + 1 * PAGE, (const void *)(map + 1 * PAGE), PAGE);
  memcpy(copy + 3 * PAGE, (const void *)(map + 3 * PAGE), PAGE);
  signal(SIGUSR1, on_usr1);
  printf("ready %lx %llx\n", (unsigned long)(uintptr_t)map, (unsigned long long)checksum(copy));
  fflush(stdout);
  while (!go) pause();
  struct timespec nap = {0, 100 * 1000 * 1000};
  for (;;) {
    nanosleep(&nap, NULL);
    printf("map %llx %s\n", (unsigned long long)checksum(map), (const char *)map + 1 * PAGE);
    fflush(stdout);
  }
}
