// The state a restore must bring back besides registers: a heap (many small brk blocks and one
// large mmap'ed block, filled with a pseudo-random pattern), a thread-local counter, and a
// working brk. Every 100 ms: bumps the thread-local, grows and shrinks the brk heap, checks the
// heap and prints a line.
// Prints: ready <tls-address-hex> <heap-checksum-hex>
// then:   state <tls-value> <heap-checksum-hex> <brk-ok:0|1>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SMALL_BLOCKS 2000
#define SMALL_SIZE 200
#define LARGE_SIZE (8 << 20)

static __thread volatile unsigned long tls_ticks;
static unsigned char *small[SMALL_BLOCKS];
static unsigned char *large;

static uint64_t next(uint64_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

static uint64_t checksum(void) {
  uint64_t sum = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < SMALL_BLOCKS; i++)
    for (int j = 0; j < SMALL_SIZE; j++) sum = (sum ^ small[i][j]) * 0x100000001b3ull;
  for (size_t j = 0; j < LARGE_SIZE; j += 64) sum = (sum ^ large[j]) * 0x100000001b3ull;
  return sum;
}

/** Grows the brk heap by a block malloc cannot serve from free memory, then gives it back. */
static int brk_works(void) {
  void *before = sbrk(0);
  char *grown = sbrk(1 << 20);
  if (grown == (void *)-1) return 0;
  for (int i = 0; i < (1 << 20); i += 4096) grown[i] = 1;
  return sbrk(-(1 << 20)) != (void *)-1 && sbrk(0) == before;
}

int main(void) {
  uint64_t state = 0x1234567887654321ull;
  for (int i = 0; i < SMALL_BLOCKS; i++) {
    small[i] = malloc(SMALL_SIZE);
    for (int j = 0; j < SMALL_SIZE; j++) small[i][j] = (unsigned char)next(&state);
  }
  large = malloc(LARGE_SIZE);
  for (size_t j = 0; j < LARGE_SIZE; j++) large[j] = (unsigned char)next(&state);
  printf("ready %lx %llx\n", (unsigned long)(uintptr_t)&tls_ticks, (unsigned long long)checksum());
  fflush(stdout);
  struct timespec nap = {0, 100 * 1000 * 1000};
  for (;;) {
    nanosleep(&nap, NULL);
    tls_ticks++;
    printf("state %lu %llx %d\n", tls_ticks, (unsigned long long)checksum(), brk_works());
    fflush(stdout);
  }
}
