/*
 * fileio.node: the NVMe controller model's batch transfer between its image file and physical
 * memory, on Node-API (ABI-stable). The controller answers a random 4 KiB Read with one pread;
 * through fs.readSync that is one binding crossing, argument checks and a Buffer per command, which
 * costs as much as the system call itself. Here a whole burst of commands is one call.
 *
 *   transfer(fd, write, phys, ops, count) -> done
 *     phys   Uint8Array over physical memory (a SharedArrayBuffer)
 *     ops    Float64Array of `count` triples (file position, physical address, length)
 *     done   how many ops were transferred completely, in order (count when all were); the
 *            first op not done failed (I/O error, end of file, or out of range)
 *
 * Ops whose file positions follow on from each other go in one preadv/pwritev (at most IOV_BATCH
 * buffers); short transfers continue where they stopped.
 *
 * Invariants: ops run in order, so a Write followed by a Read of the same blocks reads what was
 * written; never touches memory outside phys (every op is bounds-checked against the typed array,
 * although the controller has validated them already); errors are returned, not thrown, except a
 * TypeError for arguments of the wrong shape.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

#define IOV_BATCH 1024

static napi_value js_transfer(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  bool write = false, is_ta = false;
  uint32_t count;
  napi_typedarray_type ptype, otype;
  size_t plen, olen;
  void *pdata, *odata;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok
      || napi_get_value_bool(env, argv[1], &write) != napi_ok
      || napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta
      || napi_get_typedarray_info(env, argv[2], &ptype, &plen, &pdata, NULL, NULL) != napi_ok
      || ptype != napi_uint8_array || pdata == NULL
      || napi_is_typedarray(env, argv[3], &is_ta) != napi_ok || !is_ta
      || napi_get_typedarray_info(env, argv[3], &otype, &olen, &odata, NULL, NULL) != napi_ok
      || otype != napi_float64_array
      || napi_get_value_uint32(env, argv[4], &count) != napi_ok || (size_t)count * 3 > olen) {
    napi_throw_type_error(env, "EINVAL", "transfer(fd: number, write: boolean, phys: Uint8Array, ops: Float64Array, count: number) with 3*count entries in ops");
    return NULL;
  }
  unsigned char *phys = pdata;
  const double *ops = odata;
  struct iovec iov[IOV_BATCH];
  uint32_t i = 0;
  while (i < count) {
    /* One group: ops i.., consecutive in the file, each inside phys. */
    double pos = ops[3 * i];
    uint32_t j = i;
    int n = 0;
    double end = pos;
    while (j < count && n < IOV_BATCH && ops[3 * j] == end) {
      double addr = ops[3 * j + 1], len = ops[3 * j + 2];
      if (!(pos >= 0 && addr >= 0 && len > 0 && addr + len <= (double)plen)) break;
      iov[n].iov_base = phys + (size_t)addr;
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
        napi_value out;
        napi_create_uint32(env, i, &out);
        return out;
      }
      at += r;
      while (n > 0 && (size_t)r >= v->iov_len) { r -= (ssize_t)v->iov_len; v++; n--; i++; }
      if (n > 0) { v->iov_base = (unsigned char *)v->iov_base + r; v->iov_len -= (size_t)r; }
    }
  }
  napi_value out;
  napi_create_uint32(env, i, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"transfer", NULL, js_transfer, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
