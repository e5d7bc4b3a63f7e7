// One memory mapped twice, four ways: a memfd mapped by two mmap calls, shared anonymous memory
// mapped again by mremap with old size 0, a SysV segment attached twice, and two pages from the
// middle of 8 pages of shared anonymous memory mapped again below them; the memfd is mapped
// privately too (its name must come back as it was). Every 50 ms it writes a
// new value through the first mapping of each and prints what the second mapping shows.
// Prints: ready
// then:   tick <n> <memfd second> <anonymous second> <sysv second> <part below>
//         (each "m<n>", "s<n>", "x<n>", "b<n>")
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#define SIZE 4096

int main(void) {
  int fd = memfd_create("doublemap", 0);
  if (fd < 0 || ftruncate(fd, SIZE) != 0) { perror("memfd"); return 1; }
  char *memfd_a = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  char *memfd_b = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  char *memfd_private = mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
  char *anon_a = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  char *anon_b = mremap(anon_a, 0, SIZE, MREMAP_MAYMOVE);
  int id = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);
  char *sysv_a = shmat(id, NULL, 0);
  char *sysv_b = shmat(id, NULL, 0);
  shmctl(id, IPC_RMID, NULL); // freed once detached, as by its last user
  char *area = mmap(NULL, 10 * SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *big = mmap(area + 2 * SIZE, 8 * SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  char *part = mremap(big + 4 * SIZE, 0, 2 * SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, area);
  if (memfd_b == MAP_FAILED || memfd_private == MAP_FAILED || anon_b == MAP_FAILED || sysv_b == (void *) -1 || big == MAP_FAILED || part != area) { perror("map"); return 1; }
  printf("ready\n");
  fflush(stdout);
  struct timespec nap = {0, 50 * 1000 * 1000};
  for (unsigned long n = 1;; n++) {
    snprintf(memfd_a, SIZE, "m%lu", n);
    snprintf(anon_a, SIZE, "s%lu", n);
    snprintf(sysv_a, SIZE, "x%lu", n);
    snprintf(big + 5 * SIZE, SIZE, "b%lu", n);
    printf("tick %lu %s %s %s %s\n", n, memfd_b, anon_b, sysv_b, part + SIZE);
    fflush(stdout);
    nanosleep(&nap, NULL);
  }
}
