// memfds the program keeps both a descriptor and a mapping of, as a buffer pool does: a write
// through either must show through the other. Three of them:
//   small  64 KiB, mapped whole (the image carries its bytes with the descriptor)
//   large  24 MiB, mapped whole (too large for its bytes to travel with the descriptor)
//   sealed 4 KiB, written, sealed against writes and resizing, mapped read-only
//   part   20 MiB, "head" written at 0 through the descriptor, only its last 8 MiB mapped, filled
//          with 'P' (what lies outside its mapping cannot come back)
// Every 50 ms it writes "m<n>" through each writable mapping and "f<n>" through each descriptor
// (pwrite), and prints what the descriptor reads of the first and the mapping shows of the second.
// Prints: ready <part's descriptor>
// then:   tick <n> <small fd> <small map> <large fd> <large map> <sealed seals> <sealed map>
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SMALL (64 << 10)
#define LARGE (24 << 20)
#define SEALED 4096
#define MAP_AT 40960    // where the mapping is written, a page into the small one's second half
#define FD_AT 12288     // where the descriptor is written
#define LARGE_OFFSET (20 << 20)
#define PART (20 << 20)
#define PART_MAPPED_AT (12 << 20)

static char *map_memfd(const char *name, int *fd, size_t size) {
  *fd = memfd_create(name, MFD_ALLOW_SEALING);
  if (*fd < 0 || ftruncate(*fd, size) != 0) return MAP_FAILED;
  return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
}

static void read_at(int fd, off_t at, char *text, size_t size) {
  ssize_t got = pread(fd, text, size - 1, at);
  text[got < 0 ? 0 : got] = 0;
}

int main(void) {
  int small_fd, large_fd, sealed_fd = memfd_create("sealed", MFD_ALLOW_SEALING);
  char *small = map_memfd("small", &small_fd, SMALL);
  char *large = map_memfd("large", &large_fd, LARGE);
  if (small == MAP_FAILED || large == MAP_FAILED || sealed_fd < 0) { perror("memfd"); return 1; }
  memset(large, 'L', LARGE); // every page of it resident, as a pool in use
  if (pwrite(sealed_fd, "sealed-bytes", 12, 0) != 12 || ftruncate(sealed_fd, SEALED) != 0 ||
      fcntl(sealed_fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) != 0) { perror("seal"); return 1; }
  char *sealed = mmap(NULL, SEALED, PROT_READ, MAP_SHARED, sealed_fd, 0);
  if (sealed == MAP_FAILED) { perror("mmap sealed"); return 1; }
  int part_fd = memfd_create("part", 0);
  if (part_fd < 0 || ftruncate(part_fd, PART) != 0 || pwrite(part_fd, "head", 4, 0) != 4) { perror("part"); return 1; }
  char *part = mmap(NULL, PART - PART_MAPPED_AT, PROT_READ | PROT_WRITE, MAP_SHARED, part_fd, PART_MAPPED_AT);
  if (part == MAP_FAILED) { perror("mmap part"); return 1; }
  memset(part, 'P', PART - PART_MAPPED_AT);
  printf("ready %d\n", part_fd);
  fflush(stdout);
  struct timespec nap = {0, 50 * 1000 * 1000};
  char small_fd_view[16], large_fd_view[16], written[16];
  for (unsigned long n = 1;; n++) {
    snprintf(small + MAP_AT, 16, "m%lu", n);
    snprintf(large + LARGE_OFFSET + MAP_AT, 16, "m%lu", n);
    snprintf(written, sizeof written, "f%lu", n);
    pwrite(small_fd, written, strlen(written) + 1, FD_AT);
    pwrite(large_fd, written, strlen(written) + 1, LARGE_OFFSET + FD_AT);
    read_at(small_fd, MAP_AT, small_fd_view, sizeof small_fd_view);
    read_at(large_fd, LARGE_OFFSET + MAP_AT, large_fd_view, sizeof large_fd_view);
    printf("tick %lu %s %s %s %s %d %s\n", n, small_fd_view, small + FD_AT, large_fd_view, large + LARGE_OFFSET + FD_AT,
           fcntl(sealed_fd, F_GET_SEALS), sealed);
    fflush(stdout);
    nanosleep(&nap, NULL);
  }
}
