/*
 * fileio.node: the NVMe controller model's batch transfer between its image file and physical
 * memory, on Node-API (ABI-stable). The controller answers a random 4 KiB Read with one pread;
 * through fs.readSync that is one binding crossing, argument checks and a Buffer per command, which
 * costs as much as the system call itself. Here a whole burst of commands is one call, and with the
 * image memory-mapped no system call at all: each op is one memcpy between the mapping and phys.
 *
 *   transfer(fd, write, phys, ops, count) -> done        preadv/pwritev path
 *   map(fd, bytes) -> mapping | reason                   map the image's first `bytes` read-only, shared
 *   copy(mapping, phys, ops, count) -> done              read path: memcpy from a mapping to phys
 *     phys   Uint8Array over physical memory (a SharedArrayBuffer)
 *     ops    Float64Array of `count` triples (file position, physical address, length)
 *     done   how many ops were transferred completely, in order (count when all were); the
 *            first op not done failed (I/O error, end of file, or out of range)
 *     mapping an opaque external (unmapped when collected, at the latest when the thread ends);
 *            map returns a string saying why instead when the file does not map; fd must stay
 *            open while the mapping is used
 *
 * transfer: ops whose file positions follow on from each other go in one preadv/pwritev (at most
 * IOV_BATCH buffers); short transfers continue where they stopped.
 *
 * copy: the data moves once, as with pread, from the page cache pages the mapping shares with the
 * file, so it sees what transfer wrote (one page cache). Reads only: the controller model
 * (worker.ts) writes with transfer, since stores through the mapping took a write fault per clean
 * page and slowed later reads (measured; see worker.ts); the mapping is read-only accordingly. A
 * file truncated by another process under the mapping makes an access past the new end raise
 * SIGBUS: copy runs its memcpys inside a guard (a thread-local jump buffer and the mapping's range)
 * that a process-wide SIGBUS handler, installed once with SA_NODEFER, leaves with siglongjmp; the
 * op there is "not done". A SIGBUS outside a guarded range goes to the handler that was there
 * before (or the default action), so other faults still kill the process as they would have. The
 * kernel backs a mapping in whole pages: after a truncation to a size that is not a multiple of the
 * page size, the rest of the last page reads as zeros (preadv would fail); every whole page past
 * the new end fails as with preadv. The mapping keeps the length it was made with: a file grown
 * afterwards is still seen only up to that length.
 *
 * Invariants: ops run in order, so a Write followed by a Read of the same blocks reads what was
 * written; never touches memory outside phys and the mapping (every op is bounds-checked against
 * the typed array and the mapping's length, although the controller has validated them already);
 * positions are 64-bit; errors are returned, not thrown, except a TypeError for arguments of the
 * wrong shape.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define IOV_BATCH 1024

/* The batch that transfer and copy take after their own leading arguments. */
struct batch {
  unsigned char *phys;
  size_t plen; /* bytes in phys */
  const double *ops;
  uint32_t count;
};

#define MAX_ARGS 5

/* The call's arguments into argv (MAX_ARGS of them) and its batch, the `lead` arguments after
   which come phys, ops and count; false if any is missing or malformed. */
static bool get_args(napi_env env, napi_callback_info info, size_t lead, napi_value *argv, struct batch *b) {
  size_t argc = MAX_ARGS;
  bool is_ta = false;
  napi_typedarray_type ptype, otype;
  size_t olen;
  void *pdata, *odata;
  napi_value *batch = argv + lead;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < lead + 3
      || napi_is_typedarray(env, batch[0], &is_ta) != napi_ok || !is_ta
      || napi_get_typedarray_info(env, batch[0], &ptype, &b->plen, &pdata, NULL, NULL) != napi_ok
      || ptype != napi_uint8_array || pdata == NULL
      || napi_is_typedarray(env, batch[1], &is_ta) != napi_ok || !is_ta
      || napi_get_typedarray_info(env, batch[1], &otype, &olen, &odata, NULL, NULL) != napi_ok
      || otype != napi_float64_array
      || napi_get_value_uint32(env, batch[2], &b->count) != napi_ok || (size_t)b->count * 3 > olen) {
    return false;
  }
  b->phys = pdata;
  b->ops = odata;
  return true;
}

static napi_value uint32_value(napi_env env, uint32_t v) {
  napi_value out;
  napi_create_uint32(env, v, &out);
  return out;
}

static napi_value js_transfer(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  struct batch b;
  int32_t fd;
  bool write = false;
  if (!get_args(env, info, 2, argv, &b) || napi_get_value_int32(env, argv[0], &fd) != napi_ok
      || napi_get_value_bool(env, argv[1], &write) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "transfer(fd: number, write: boolean, phys: Uint8Array, ops: Float64Array, count: number) with 3*count entries in ops");
    return NULL;
  }
  struct iovec iov[IOV_BATCH];
  uint32_t i = 0;
  const double *ops = b.ops;
  while (i < b.count) {
    /* One group: ops i.., consecutive in the file, each inside phys. */
    double pos = ops[3 * i];
    uint32_t j = i;
    int n = 0;
    double end = pos;
    while (j < b.count && n < IOV_BATCH && ops[3 * j] == end) {
      double addr = ops[3 * j + 1], len = ops[3 * j + 2];
      if (!(pos >= 0 && addr >= 0 && len > 0 && addr + len <= (double)b.plen)) break;
      iov[n].iov_base = b.phys + (size_t)addr;
      iov[n].iov_len = (size_t)len;
      n++;
      j++;
      end += len;
    }
    if (n == 0) break; /* op i is out of range: it and the rest are not done */
    /* Transfer the group; after a short transfer, drop what was done and go on. */
    struct iovec *v = iov;
    off_t at = (off_t)pos;
    while (n > 0) {
      ssize_t r = write ? pwritev(fd, v, n, at) : preadv(fd, v, n, at);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        return uint32_value(env, i);
      }
      at += r;
      while (n > 0 && (size_t)r >= v->iov_len) { r -= (ssize_t)v->iov_len; v++; n--; i++; }
      if (n > 0) { v->iov_base = (unsigned char *)v->iov_base + r; v->iov_len -= (size_t)r; }
    }
  }
  return uint32_value(env, i);
}

/* ---- memory-mapped path ---------------------------------------------------------------------- */

struct mapping {
  const unsigned char *base;
  size_t len;
};

/* The guarded region of the copy running on this thread: a SIGBUS at an address in [lo, hi)
   jumps to `back`. Set (non-NULL lo) only around the memcpys. */
struct guard {
  sigjmp_buf back;
  const unsigned char *lo, *hi;
};
static __thread struct guard *volatile current_guard;

static struct sigaction previous_sigbus;
static pthread_once_t sigbus_once = PTHREAD_ONCE_INIT;
static int sigbus_installed; /* 0 until install_sigbus ran; then 1 (installed) or -errno */

static void on_sigbus(int sig, siginfo_t *si, void *context) {
  struct guard *g = current_guard;
  const unsigned char *at = si ? (const unsigned char *)si->si_addr : NULL;
  if (g && at >= g->lo && at < g->hi) siglongjmp(g->back, 1);
  if (previous_sigbus.sa_flags & SA_SIGINFO) {
    previous_sigbus.sa_sigaction(sig, si, context);
  } else if (previous_sigbus.sa_handler == SIG_DFL) {
    /* Not ours: die as without this handler (a fault re-raises on return, a sent signal now). */
    signal(sig, SIG_DFL);
    raise(sig);
  } else if (previous_sigbus.sa_handler != SIG_IGN) {
    previous_sigbus.sa_handler(sig);
  }
}

static void install_sigbus(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  /* SA_NODEFER: SIGBUS stays unblocked after the siglongjmp, so sigsetjmp need not save the
     signal mask (a system call per copy). */
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigbus_installed = sigaction(SIGBUS, &sa, &previous_sigbus) == 0 ? 1 : -errno;
}

static void unmap(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  struct mapping *m = data;
  munmap((void *)m->base, m->len);
  free(m);
}

static napi_value string_value(napi_env env, const char *what, int err) {
  char text[160];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  napi_value out;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value js_map(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t bytes;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok
      || napi_get_value_int64(env, argv[1], &bytes) != napi_ok || bytes <= 0) {
    napi_throw_type_error(env, "EINVAL", "map(fd: number, bytes: number) with bytes > 0");
    return NULL;
  }
  pthread_once(&sigbus_once, install_sigbus);
  if (sigbus_installed < 0) return string_value(env, "sigaction(SIGBUS)", -sigbus_installed);
  void *base = mmap(NULL, (size_t)bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return string_value(env, "mmap", errno);
  struct mapping *m = malloc(sizeof *m);
  if (!m) { munmap(base, (size_t)bytes); return string_value(env, "malloc", ENOMEM); }
  m->base = base;
  m->len = (size_t)bytes;
  napi_value out;
  if (napi_create_external(env, m, unmap, NULL, &out) != napi_ok) {
    unmap(env, m, NULL);
    return string_value(env, "napi_create_external", ENOMEM);
  }
  return out;
}

static napi_value js_copy(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  struct batch b;
  napi_valuetype type;
  struct mapping *m = NULL;
  if (!get_args(env, info, 1, argv, &b) || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external
      || napi_get_value_external(env, argv[0], (void **)&m) != napi_ok || m == NULL) {
    napi_throw_type_error(env, "EINVAL", "copy(mapping: from map(), phys: Uint8Array, ops: Float64Array, count: number) with 3*count entries in ops");
    return NULL;
  }
  struct guard g;
  volatile uint32_t i = 0; /* survives the siglongjmp: the op that faulted is not done */
  g.lo = m->base;
  g.hi = m->base + m->len;
  if (sigsetjmp(g.back, 0) == 0) {
    current_guard = &g;
    for (; i < b.count; i++) {
      double pos = b.ops[3 * i], addr = b.ops[3 * i + 1], len = b.ops[3 * i + 2];
      if (!(pos >= 0 && addr >= 0 && len > 0 && pos + len <= (double)m->len && addr + len <= (double)b.plen)) break;
      memcpy(b.phys + (size_t)addr, m->base + (uint64_t)pos, (size_t)len);
    }
  }
  current_guard = NULL;
  return uint32_value(env, i);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"transfer", NULL, js_transfer, NULL, NULL, NULL, napi_enumerable, NULL},
    {"map", NULL, js_map, NULL, NULL, NULL, napi_enumerable, NULL},
    {"copy", NULL, js_copy, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
