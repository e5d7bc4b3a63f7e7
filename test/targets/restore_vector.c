// Keeps values in xmm and ymm registers across a long loop and checks them at its end: a restore
// that interrupts the loop and loses FPU/SSE/AVX state makes the check fail. The loop is nearly
// all the process does, so a dump lands inside it.
// Prints: ready
// then, per round of about 200 ms: round <n> ok   (or: round <n> BAD <lane values>)
#include <stdint.h>
#include <stdio.h>

#define ITERATIONS 200000000ull

int main(void) {
  printf("ready\n");
  fflush(stdout);
  for (unsigned long round = 1;; round++) {
    uint64_t init[4] = {round, round << 8, round << 16, round << 24};
    uint64_t step[4] = {1, 3, 5, 7};
    uint32_t sinit[4] = {11, 13, 17, 19};
    uint32_t sstep[4] = {2, 4, 6, 8};
    uint64_t out[4];
    uint32_t sout[4];
    // ymm0 += ymm1 (upper lanes included) and xmm8 += xmm9, ITERATIONS times (VEX-encoded
    // throughout: mixing in legacy SSE would cost a state transition per instruction),
    // with nothing but rcx touched in between.
    __asm__ volatile(
        "vmovdqu %[init], %%ymm0\n\t"
        "vmovdqu %[step], %%ymm1\n\t"
        "vmovdqu %[sinit], %%xmm8\n\t"
        "vmovdqu %[sstep], %%xmm9\n\t"
        "mov %[n], %%rcx\n\t"
        "1:\n\t"
        "vpaddq %%ymm1, %%ymm0, %%ymm0\n\t"
        "vpaddd %%xmm9, %%xmm8, %%xmm8\n\t"
        "dec %%rcx\n\t"
        "jnz 1b\n\t"
        "vmovdqu %%ymm0, %[out]\n\t"
        "vmovdqu %%xmm8, %[sout]\n\t"
        "vzeroupper\n\t"
        : [out] "=m"(out), [sout] "=m"(sout)
        : [init] "m"(init), [step] "m"(step), [sinit] "m"(sinit), [sstep] "m"(sstep), [n] "r"(ITERATIONS)
        : "rcx", "xmm0", "xmm1", "xmm8", "xmm9", "memory");
    int ok = 1;
    for (int i = 0; i < 4; i++) {
      if (out[i] != init[i] + ITERATIONS * step[i]) ok = 0;
      if (sout[i] != (uint32_t)(sinit[i] + ITERATIONS * sstep[i])) ok = 0;
    }
    if (ok) printf("round %lu ok\n", round);
    else printf("round %lu BAD %llx %llx %llx %llx %x %x %x %x\n", round, (unsigned long long)out[0], (unsigned long long)out[1],
                (unsigned long long)out[2], (unsigned long long)out[3], sout[0], sout[1], sout[2], sout[3]);
    fflush(stdout);
  }
}
