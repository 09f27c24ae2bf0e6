/* eventfd for the guest (Debian's wasi-libc has neither the header nor the function): musl's
 * declarations, implemented by guest/libc_perms.c over brig's brig_fd_eventfd host call.
 * build-libc-perms.sh puts this header in the guest's sysroot, so that CPython's configure
 * finds it and builds os.eventfd. */
#ifndef _SYS_EVENTFD_H
#define _SYS_EVENTFD_H

#include <fcntl.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t eventfd_t;

#define EFD_SEMAPHORE 1
#define EFD_CLOEXEC O_CLOEXEC
#define EFD_NONBLOCK O_NONBLOCK

int eventfd(unsigned int, int);
int eventfd_read(int, eventfd_t*);
int eventfd_write(int, eventfd_t);

#ifdef __cplusplus
}
#endif

#endif
