/* LD_PRELOAD shim for a test Orthanc. Test use only.
 * 1. bind(): turn a wildcard address (0.0.0.0 / ::) into loopback (127.0.0.1 / ::1).
 * 2. pthread_attr_setstacksize(): raise requests below 8 MiB to 8 MiB. Debian's
 *    libcivetweb 1.15 gives HTTP worker threads 100 KiB (0x19000), and
 *    gdcm::ImageWriter::Write() alone needs a 132 KiB frame, so JPEG 2000 transcoding by
 *    orthanc-gdcm inside an HTTP request overflows the stack (segfault / corruption). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size) {
  static int (*real_set)(pthread_attr_t *, size_t);
  if (!real_set) real_set = (int (*)(pthread_attr_t *, size_t))dlsym(RTLD_NEXT, "pthread_attr_setstacksize");
  if (size < (size_t)8 << 20) size = (size_t)8 << 20;
  return real_set(attr, size);
}
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*real_bind)(int, const struct sockaddr *, socklen_t);
  if (!real_bind) real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
  if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    struct sockaddr_in a; memcpy(&a, addr, sizeof a);
    if (a.sin_addr.s_addr == htonl(INADDR_ANY)) {
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
    }
  } else if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 a; memcpy(&a, addr, sizeof a);
    if (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) {
      a.sin6_addr = in6addr_loopback;
      return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
    }
  }
  return real_bind(fd, addr, len);
}
