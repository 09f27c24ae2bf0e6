/* brig's implementation of the wasm2c runtime (see wasm-rt.h for what differs from Debian's).
 *
 * Traps: generated code calls wasm_rt_trap(); memory faults arrive as SIGSEGV/SIGBUS. Both
 * siglongjmp to the jump target of the current thread's brig_guest_call(). Faults that are
 * not the guest's (outside guest memory and outside the thread's stack guard, or on a thread
 * not running guest code) get the default action: brig must crash loudly, not hide a bug. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/guest_call.h"
#include "engine/guest_exit.h"
#include "engine/memory_files.h"
#include "engine/wasm-rt.h"

#define WASM_PAGE 65536u
/* 4 GiB of addresses plus 4 GiB so that any u32 address + u32 offset faults. */
#define RESERVATION (8ull << 30)
#define ALT_STACK_SIZE (64u * 1024u)
/* How far below the bottom of the thread stack a fault still counts as stack exhaustion. */
#define STACK_GUARD_SLACK (1u << 20)

typedef struct {
  sigjmp_buf jump;
  int active;                   /* inside brig_guest_call */
  uintptr_t mem_lo, mem_hi;     /* reservation of the memory being run */
  uintptr_t stack_lo, stack_hi; /* this thread's stack */
  uint32_t exit_code;
  void* alt_stack;
  uint32_t memory_limit_pages;
  brig_call_control* volatile control; /* of the call in progress, or NULL */
  volatile int host_depth;             /* > 0 while a WASI import runs */
} thread_state;

static __thread thread_state t_state;
static pthread_key_t g_cleanup_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_initialized;

/* longjmp values beside the wasm_rt_trap_t codes traps use */
enum { JUMP_EXIT = 1000, JUMP_INTERRUPT = 1001 };

/* Realtime signal that interrupts guest code (glibc keeps SIGRTMIN..SIGRTMIN+2). */
#define INTERRUPT_SIGNAL (SIGRTMIN + 4)

static void fault_handler(int sig, siginfo_t* info, void* ucontext) {
  (void)ucontext;
  thread_state* t = &t_state;
  uintptr_t addr = (uintptr_t)info->si_addr;
  if (info->si_code <= 0) {
    /* Sent by kill/tgkill/sigqueue, not a fault (si_addr is meaningless): it must do what it
     * does to any process, at once (returning would just go on). */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  if (t->active) {
    if (addr >= t->mem_lo && addr < t->mem_hi) {
      t->active = 0;
      siglongjmp(t->jump, WASM_RT_TRAP_OOB);
    }
    if (addr + STACK_GUARD_SLACK >= t->stack_lo && addr < t->stack_lo + 4096) {
      t->active = 0;
      siglongjmp(t->jump, WASM_RT_TRAP_EXHAUSTION);
    }
  }
  /* Not a guest fault: let the default action (core dump) happen on return. */
  signal(sig, SIG_DFL);
}

static void interrupt_handler(int sig) {
  (void)sig;
  thread_state* t = &t_state;
  brig_call_control* c = t->control;
  if (!t->active || !c || !c->interrupted) return; /* stale or not ours */
  if (t->host_depth > 0) return;                    /* brig_host_leave will jump */
  t->active = 0;
  siglongjmp(t->jump, JUMP_INTERRUPT);
}

static void free_thread_state(void* p) {
  (void)p;
  if (t_state.alt_stack) {
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    free(t_state.alt_stack);
    t_state.alt_stack = NULL;
  }
}

static void init_once(void) {
  pthread_key_create(&g_cleanup_key, free_thread_state);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sa.sa_sigaction = fault_handler;
  if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0) {
    perror("brig: sigaction");
    abort();
  }
  struct sigaction si;
  memset(&si, 0, sizeof si);
  /* SA_NODEFER, as for faults: the handler leaves by siglongjmp, and the jump target does not
   * save the signal mask (that costs a syscall per guest call), so the handler must not run
   * with its own signal blocked. It re-checks everything, so a second delivery is harmless. */
  si.sa_flags = SA_ONSTACK | SA_RESTART | SA_NODEFER;
  sigemptyset(&si.sa_mask);
  si.sa_handler = interrupt_handler;
  if (sigaction(INTERRUPT_SIGNAL, &si, NULL) != 0) {
    perror("brig: sigaction");
    abort();
  }
  g_initialized = 1;
}

void wasm_rt_init(void) { pthread_once(&g_once, init_once); }
bool wasm_rt_is_initialized(void) { return g_initialized; }
void wasm_rt_free(void) {}

/* Gives the calling thread an alternate signal stack (a stack overflow fault cannot run its
 * handler on the overflowed stack) and records the stack bounds. */
static void init_thread(void) {
  thread_state* t = &t_state;
  if (t->alt_stack) return;
  wasm_rt_init();
  t->alt_stack = malloc(ALT_STACK_SIZE);
  if (!t->alt_stack) abort();
  stack_t ss = {.ss_sp = t->alt_stack, .ss_size = ALT_STACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) abort();
  pthread_setspecific(g_cleanup_key, t);
  pthread_attr_t attr;
  void* lo = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &lo, &size);
    pthread_attr_destroy(&attr);
  }
  t->stack_lo = (uintptr_t)lo;
  t->stack_hi = (uintptr_t)lo + size;
}

brig_call_outcome brig_guest_call(wasm_rt_memory_t* memory, void (*fn)(void*), void* arg) {
  return brig_guest_call_controlled(memory, fn, arg, NULL);
}

brig_call_outcome brig_guest_call_controlled(wasm_rt_memory_t* memory, void (*fn)(void*), void* arg,
                                            brig_call_control* control) {
  thread_state* t = &t_state;
  brig_call_outcome out = {BRIG_CALL_RETURNED, WASM_RT_TRAP_NONE, 0};
  init_thread();
  if (t->active) abort(); /* re-entry would overwrite the jump target */
  t->mem_lo = (uintptr_t)memory->data;
  t->mem_hi = t->mem_lo + RESERVATION;
  t->host_depth = 0;
  if (control) {
    control->thread = pthread_self();
    __atomic_store_n(&control->running, 1, __ATOMIC_SEQ_CST);
  }
  t->control = control;
  /* No saved mask (0): both handlers that jump here run with the thread's own mask
   * (SA_NODEFER, empty sa_mask), and saving it costs a sigprocmask syscall per call. */
  int jumped = sigsetjmp(t->jump, 0);
  if (jumped == 0) {
    t->active = 1;
    if (!control || !__atomic_load_n(&control->interrupted, __ATOMIC_SEQ_CST)) {
      fn(arg);
      t->active = 0;
    } else {
      t->active = 0;
      jumped = JUMP_INTERRUPT; /* interrupted before it started */
    }
  }
  t->active = 0;
  t->control = NULL;
  if (control) __atomic_store_n(&control->running, 0, __ATOMIC_SEQ_CST);
  if (jumped == 0) return out;
  if (jumped == JUMP_EXIT) {
    out.status = BRIG_CALL_EXITED;
    out.exit_code = t->exit_code;
  } else if (jumped == JUMP_INTERRUPT) {
    out.status = BRIG_CALL_INTERRUPTED;
  } else {
    out.status = BRIG_CALL_TRAPPED;
    out.trap = (wasm_rt_trap_t)jumped;
  }
  return out;
}

void brig_call_interrupt(brig_call_control* control) {
  __atomic_store_n(&control->interrupted, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&control->running, __ATOMIC_SEQ_CST)) {
    /* The handler re-checks that this control's call is the one running on that thread. */
    pthread_kill(control->thread, INTERRUPT_SIGNAL);
  }
}

void brig_call_control_reset(brig_call_control* control) {
  __atomic_store_n(&control->interrupted, 0, __ATOMIC_SEQ_CST);
}

void brig_host_enter(void) { t_state.host_depth++; }

void brig_host_leave(void) {
  thread_state* t = &t_state;
  if (--t->host_depth == 0 && t->active && t->control && t->control->interrupted) {
    t->active = 0;
    siglongjmp(t->jump, JUMP_INTERRUPT);
  }
}

void wasm_rt_trap(wasm_rt_trap_t code) {
  thread_state* t = &t_state;
  if (!t->active) {
    fprintf(stderr, "brig: wasm trap %d outside a guest call\n", (int)code);
    abort();
  }
  t->active = 0;
  siglongjmp(t->jump, code == WASM_RT_TRAP_NONE ? WASM_RT_TRAP_UNREACHABLE : (int)code);
}

void brig_guest_exit(uint32_t exit_code) {
  thread_state* t = &t_state;
  if (!t->active) abort();
  t->active = 0;
  t->exit_code = exit_code;
  siglongjmp(t->jump, JUMP_EXIT);
}

void brig_rt_set_memory_limit_pages(uint32_t pages) { t_state.memory_limit_pages = pages; }

const char* wasm_rt_strerror(wasm_rt_trap_t trap) {
  switch (trap) {
    case WASM_RT_TRAP_NONE: return "no trap";
    case WASM_RT_TRAP_OOB: return "out-of-bounds memory access";
    case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE: return "unreachable executed";
    case WASM_RT_TRAP_CALL_INDIRECT: return "invalid indirect call";
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught wasm exception";
    case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
  }
  return "unknown trap";
}

/* ---- function types ---- */

typedef struct {
  uint32_t params, results;
  wasm_rt_type_t* types; /* params then results */
} func_type;

static pthread_mutex_t g_types_lock = PTHREAD_MUTEX_INITIALIZER;
static func_type* g_types;
static uint32_t g_type_count;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
  uint32_t n = params + results;
  wasm_rt_type_t* types = malloc((n ? n : 1) * sizeof *types);
  if (!types) abort();
  va_list ap;
  va_start(ap, results);
  for (uint32_t i = 0; i < n; i++) types[i] = va_arg(ap, wasm_rt_type_t);
  va_end(ap);

  pthread_mutex_lock(&g_types_lock);
  uint32_t found = 0;
  for (uint32_t i = 0; i < g_type_count && !found; i++) {
    const func_type* t = &g_types[i];
    if (t->params == params && t->results == results && memcmp(t->types, types, n * sizeof *types) == 0) {
      found = i + 1;
    }
  }
  if (found) {
    free(types);
  } else {
    func_type* grown = realloc(g_types, (g_type_count + 1) * sizeof *g_types);
    if (!grown) abort();
    g_types = grown;
    g_types[g_type_count++] = (func_type){params, results, types};
    found = g_type_count;
  }
  pthread_mutex_unlock(&g_types_lock);
  return found;
}

/* ---- exceptions (not used by the guest) ---- */

uint32_t wasm_rt_register_tag(uint32_t size) { (void)size; return 0; }
void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void* values) {
  (void)tag; (void)size; (void)values;
  wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}
void wasm_rt_throw(void) { wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION); }
static __thread WASM_RT_UNWIND_TARGET* t_unwind_target;
WASM_RT_UNWIND_TARGET* wasm_rt_get_unwind_target(void) { return t_unwind_target; }
void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET* target) { t_unwind_target = target; }
uint32_t wasm_rt_exception_tag(void) { return 0; }
uint32_t wasm_rt_exception_size(void) { return 0; }
void* wasm_rt_exception(void) { return NULL; }

/* ---- memory ---- */

void wasm_rt_allocate_memory(wasm_rt_memory_t* memory, uint32_t initial_pages, uint32_t max_pages) {
  uint32_t limit = t_state.memory_limit_pages;
  if (max_pages > 65536u) max_pages = 65536u;
  if (limit && limit < max_pages) max_pages = limit;
  if (initial_pages > max_pages) max_pages = initial_pages; /* the module cannot start smaller */
  void* addr = mmap(NULL, RESERVATION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) {
    perror("brig: reserving guest memory");
    abort();
  }
  size_t bytes = (size_t)initial_pages * WASM_PAGE;
  if (bytes && mprotect(addr, bytes, PROT_READ | PROT_WRITE) != 0) {
    perror("brig: committing guest memory");
    abort();
  }
  memory->data = addr;
  memory->pages = initial_pages;
  memory->max_pages = max_pages;
  memory->size = (uint32_t)bytes;
}

int brig_rt_map_memory_image(wasm_rt_memory_t* memory, int fd, uint32_t bytes, uint32_t max_pages) {
  const brig_rt_mapping whole = {0, bytes, fd, 0};
  return brig_rt_map_memory_layers(memory, &whole, 1, bytes, max_pages);
}

/* ---- growth files: where image-backed memories grow (see guest_call.h) ---- */

typedef struct growth_file {
  const wasm_rt_memory_t* memory;
  int fd;              /* -1 until the memory first grows past live_start */
  uint64_t live_start; /* bytes: the file's first byte is mapped here */
  uint64_t mapped;     /* bytes of the file mapping (up to the memory's maximum) */
  struct growth_file* next;
} growth_file;

static pthread_mutex_t g_growth_mu = PTHREAD_MUTEX_INITIALIZER;
static growth_file* g_growth;

static growth_file* find_growth(const wasm_rt_memory_t* memory) {
  growth_file* g = g_growth;
  while (g && g->memory != memory) g = g->next;
  return g;
}

int brig_rt_memory_use_growth_file(wasm_rt_memory_t* memory) {
  growth_file* g = calloc(1, sizeof *g);
  if (!g) return -1;
  g->memory = memory;
  g->fd = -1;
  g->live_start = memory->size;
  pthread_mutex_lock(&g_growth_mu);
  g->next = g_growth;
  g_growth = g;
  pthread_mutex_unlock(&g_growth_mu);
  return 0;
}

static growth_file* take_growth(const wasm_rt_memory_t* memory) {
  pthread_mutex_lock(&g_growth_mu);
  growth_file** at = &g_growth;
  while (*at && (*at)->memory != memory) at = &(*at)->next;
  growth_file* g = *at;
  if (g) *at = g->next;
  pthread_mutex_unlock(&g_growth_mu);
  return g;
}

int brig_rt_memory_set_max_pages(wasm_rt_memory_t* memory, uint32_t max_pages) {
  if (max_pages > 65536u || max_pages < memory->pages) return -1;
  pthread_mutex_lock(&g_growth_mu);
  growth_file* g = find_growth(memory);
  int failed = 0;
  uint64_t want = (uint64_t)max_pages * WASM_PAGE;
  if (g && g->fd >= 0 && want > g->live_start + g->mapped) {
    /* Growth past the file's mapping would land in anonymous memory that a freeze does not
     * see: extend the file and its mapping to the new maximum first. */
    uint64_t bytes = want - g->live_start;
    failed = ftruncate(g->fd, (off_t)bytes) != 0 ||
             mmap(memory->data + g->live_start + g->mapped, bytes - g->mapped, PROT_NONE,
                  MAP_SHARED | MAP_FIXED, g->fd, (off_t)g->mapped) == MAP_FAILED;
    if (!failed) g->mapped = bytes;
  }
  if (!failed) memory->max_pages = max_pages;
  pthread_mutex_unlock(&g_growth_mu);
  return failed ? -1 : 0;
}

/* Maps the memory's growth file over [live_start, maximum), inaccessible until grown into. */
static int open_growth_file(wasm_rt_memory_t* memory, growth_file* g) {
  uint64_t max_bytes = (uint64_t)memory->max_pages * WASM_PAGE;
  if (max_bytes <= g->live_start) return -1;
  int fd = memfd_create("brig-growth", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  uint64_t bytes = max_bytes - g->live_start;
  if (ftruncate(fd, (off_t)bytes) != 0 ||
      mmap(memory->data + g->live_start, bytes, PROT_NONE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
    close(fd);
    return -1;
  }
  g->fd = fd;
  g->mapped = bytes;
  return 0;
}

brig_mem_file* brig_rt_memory_freeze_growth(wasm_rt_memory_t* memory, uint64_t* start, int* error) {
  *error = 0;
  pthread_mutex_lock(&g_growth_mu);
  growth_file* g = find_growth(memory);
  if (!g || g->fd < 0 || g->live_start >= memory->size) {
    pthread_mutex_unlock(&g_growth_mu);
    return NULL;
  }
  uint8_t* at = memory->data + g->live_start;
  uint64_t used = memory->size - g->live_start;
  /* From now on the memory changes its own copies of these pages, never the file. */
  void* remapped = mmap(at, used, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, g->fd, 0);
  /* No tail when the memory grew to its very maximum: mmap of 0 bytes fails (EINVAL). */
  void* tail = remapped == MAP_FAILED || g->mapped == used
                   ? remapped
                   : mmap(at + used, g->mapped - used, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  if (remapped == MAP_FAILED || tail == MAP_FAILED) {
    /* The mapping is now in an unknown state: the memory must not be used again. */
    pthread_mutex_unlock(&g_growth_mu);
    *error = 1;
    return NULL;
  }
  int fd = g->fd;
  *start = g->live_start;
  g->fd = -1;
  g->live_start = memory->size;
  g->mapped = 0;
  pthread_mutex_unlock(&g_growth_mu);
  if (ftruncate(fd, (off_t)used) != 0) { /* nothing was written past it: only frees the tail */
    close(fd);
    *error = 1;
    return NULL;
  }
  (void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  brig_mem_file* f = brig_mem_file_adopt(fd, used);
  if (!f) *error = 1;
  return f;
}

/* 1 if the memory had a growth file mapped. */
static int forget_growth(wasm_rt_memory_t* memory) {
  growth_file* g = take_growth(memory);
  if (!g) return 0;
  int mapped = g->fd >= 0;
  if (mapped) close(g->fd);
  free(g);
  return mapped;
}

int brig_rt_memory_reset(wasm_rt_memory_t* memory, uint32_t bytes) {
  int mapped = forget_growth(memory);
  uint32_t pages = bytes / WASM_PAGE;
  /* A memory that never grew (and never mapped a growth file) is PROT_NONE and untouched
   * past `bytes`: nothing to do. Otherwise one mapping replaces the growth file, the frozen
   * segments and whatever was grown into. */
  if ((mapped || memory->pages > pages) &&
      mmap(memory->data + bytes, RESERVATION - bytes, PROT_NONE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
    return -1;
  }
  memory->pages = pages;
  memory->size = bytes;
  return 0;
}

int brig_rt_map_memory_layers(wasm_rt_memory_t* memory, const brig_rt_mapping* maps, uint32_t count,
                              uint32_t bytes, uint32_t max_pages) {
  uint8_t* addr = mmap(NULL, RESERVATION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) return -1;
  for (uint32_t i = 0; i < count; i++) {
    const brig_rt_mapping* m = &maps[i];
    if (m->length == 0) continue;
    if (m->offset + m->length > bytes ||
        mmap(addr + m->offset, m->length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, m->fd,
             (off_t)m->file_offset) == MAP_FAILED) {
      munmap(addr, RESERVATION);
      return -1;
    }
  }
  memory->data = addr;
  memory->pages = bytes / WASM_PAGE;
  memory->max_pages = max_pages < memory->pages ? memory->pages : max_pages;
  memory->size = bytes;
  return 0;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t* memory, uint32_t delta) {
  uint32_t old_pages = memory->pages;
  uint64_t new_pages = (uint64_t)old_pages + delta;
  if (new_pages > memory->max_pages) return UINT32_MAX;
  if (delta == 0) return old_pages;
  pthread_mutex_lock(&g_growth_mu);
  growth_file* g = find_growth(memory);
  int failed = g && g->fd < 0 && new_pages * WASM_PAGE > g->live_start && open_growth_file(memory, g) != 0;
  pthread_mutex_unlock(&g_growth_mu);
  if (failed) return UINT32_MAX;
  if (mprotect(memory->data + (size_t)old_pages * WASM_PAGE, (size_t)delta * WASM_PAGE,
               PROT_READ | PROT_WRITE) != 0) {
    return UINT32_MAX;
  }
  memory->pages = (uint32_t)new_pages;
  /* 65536 pages would be 2^32 bytes: size saturates, the guard still covers the rest */
  memory->size = new_pages >= 65536u ? UINT32_MAX : (uint32_t)(new_pages * WASM_PAGE);
  return old_pages;
}

void wasm_rt_free_memory(wasm_rt_memory_t* memory) {
  forget_growth(memory);
  if (memory->data) munmap(memory->data, RESERVATION);
  memory->data = NULL;
  memory->size = 0;
  memory->pages = 0;
}

/* ---- tables ---- */

#define DEFINE_TABLE_OPS(type)                                                                  \
  void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t* table, uint32_t elements,     \
                                       uint32_t max_elements) {                                \
    table->size = elements;                                                                    \
    table->max_size = max_elements;                                                            \
    table->data = calloc(elements ? elements : 1, sizeof(wasm_rt_##type##_t));                 \
    if (!table->data) abort();                                                                 \
  }                                                                                            \
  void wasm_rt_free_##type##_table(wasm_rt_##type##_table_t* table) {                          \
    free(table->data);                                                                         \
    table->data = NULL;                                                                        \
    table->size = 0;                                                                           \
  }                                                                                            \
  uint32_t wasm_rt_grow_##type##_table(wasm_rt_##type##_table_t* table, uint32_t delta,        \
                                       wasm_rt_##type##_t init) {                              \
    uint32_t old = table->size;                                                                \
    uint64_t grown = (uint64_t)old + delta;                                                    \
    if (grown > table->max_size) return UINT32_MAX;                                            \
    if (delta == 0) return old;                                                                \
    void* data = realloc(table->data, grown * sizeof(wasm_rt_##type##_t));                     \
    if (!data) return UINT32_MAX;                                                              \
    table->data = data;                                                                        \
    for (uint64_t i = old; i < grown; i++) table->data[i] = init;                              \
    table->size = (uint32_t)grown;                                                             \
    return old;                                                                                \
  }

DEFINE_TABLE_OPS(funcref)
DEFINE_TABLE_OPS(externref)
