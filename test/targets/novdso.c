// A process that has unmapped its [vdso] (as some sandboxes do), its threads spinning in user code:
// no syscall instruction of its own is at hand for an injected call. Each thread counts in its
// own slot of `counters`.
// Prints: ready <counters-address-hex> <threads>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define THREADS 3
static volatile unsigned long counters[THREADS];

static void *spin(void *slot) {
  for (;;) counters[(uintptr_t)slot]++;
  return NULL;
}

int main(void) {
  pthread_t threads[THREADS - 1];
  for (uintptr_t i = 1; i < THREADS; i++) pthread_create(&threads[i - 1], NULL, spin, (void *)i);
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  unsigned long start = 0, end = 0;
  while (fgets(line, sizeof line, maps))
    if (strstr(line, "[vdso]")) sscanf(line, "%lx-%lx", &start, &end);
  fclose(maps);
  if (start == 0 || munmap((void *)start, end - start) != 0) return 1;
  printf("ready %lx %d\n", (unsigned long)(uintptr_t)counters, THREADS);
  fflush(stdout);
  spin(0);
}
