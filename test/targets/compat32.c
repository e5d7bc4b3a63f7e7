// A 32-bit (i386) program without libc, built with -m32 -nostdlib -static (COMPAT32_FLAGS in the
// tests): prints "ready", then "tick" every 50 ms, all through int 0x80.
static long sys3(long nr, long a, long b, long c) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  return r;
}

void _start(void) {
  static const char ready[] = "ready\n", tick[] = "tick\n";
  static const struct { long sec, nsec; } pause = {0, 50000000};
  sys3(4, 1, (long)ready, 6);   // write
  for (;;) {
    sys3(162, (long)&pause, 0, 0);  // nanosleep
    sys3(4, 1, (long)tick, 5);
  }
}
