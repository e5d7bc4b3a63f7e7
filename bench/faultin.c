// The floors under any restore: a fresh process's memory has to be created. Maps <bytes> of
// private anonymous memory and fills every page once, as a restore fills the restored task's
// pages, in one of two ways:
//   write: one write per page (the kernel zeroes each fresh page, then the write lands on it);
//   uffd:  UFFDIO_COPY from a 2 MiB buffer through a userfaultfd (each page allocated and copied
//          into in one step, as `imgfs restore` places pages), on one thread.
// Times itself (process start-up excluded). Prints: <bytes> <nanoseconds>
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (2u << 20)

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static int place(unsigned char *region, size_t bytes) {
  unsigned char *source = aligned_alloc(4096, CHUNK);
  int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
  struct uffdio_api api = { .api = UFFD_API };
  struct uffdio_register reg = { .range = { (uintptr_t)region, bytes }, .mode = UFFDIO_REGISTER_MODE_MISSING };
  if (!source || uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
    perror("faultin: userfaultfd set-up");
    return 1;
  }
  memset(source, 0x5a, CHUNK);
  for (size_t done = 0; done < bytes; done += CHUNK) {
    size_t len = bytes - done < CHUNK ? bytes - done : CHUNK;
    struct uffdio_copy copy = { .dst = (uintptr_t)region + done, .src = (uintptr_t)source, .len = len, .mode = UFFDIO_COPY_MODE_DONTWAKE };
    if (ioctl(uffd, UFFDIO_COPY, &copy)) { perror("faultin: UFFDIO_COPY"); return 1; }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[2], "write") && strcmp(argv[2], "uffd"))) {
    fprintf(stderr, "usage: faultin <bytes> write|uffd\n");
    return 2;
  }
  size_t bytes = strtoull(argv[1], NULL, 0);
  uint64_t start = now_ns();
  unsigned char *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) { perror("faultin: mmap"); return 1; }
  if (!strcmp(argv[2], "write")) memset(region, 0x5a, bytes);
  else if (place(region, bytes)) return 1;
  printf("%zu %llu\n", bytes, (unsigned long long)(now_ns() - start));
  return 0;
}
