/*
 * tap.node: the smallest native piece the NIC model's tap backend needs, on Node-API (ABI-stable,
 * so one build serves every Node version >= the headers'). Node can read and write a file
 * descriptor but cannot issue the TUNSETIFF ioctl that attaches one to a TAP interface.
 *
 *   open(ifname, clonePath) -> [fd, actualName]   open clonePath (/dev/net/tun) O_RDWR|O_NONBLOCK,
 *                                                 TUNSETIFF IFF_TAP|IFF_NO_PI; throws an Error
 *                                                 whose .code is the errno name (EACCES, EPERM,
 *                                                 ENOENT, EBUSY, ...) and .syscall 'open'|'ioctl'
 *   read(fd, u8, off, len) -> n | -errno          one frame, non-blocking (-EAGAIN: none waiting)
 *   write(fd, u8, off, len) -> n | -errno         one frame, non-blocking (-EAGAIN: queue full)
 *   close(fd)
 *
 * Invariants: never blocks the calling thread; never touches memory outside u8[off, off+len)
 * (bounds are checked against the typed array, which may sit on a SharedArrayBuffer); errors of
 * read/write are returned, not thrown, so a device loop pays no exception per empty poll.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, path, strerror(err));
  napi_value code, text, error, sc;
  const char *name = err == EACCES ? "EACCES" : err == EPERM ? "EPERM" : err == ENOENT ? "ENOENT"
    : err == ENODEV ? "ENODEV" : err == EBUSY ? "EBUSY" : err == EINVAL ? "EINVAL" : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_set_named_property(env, error, "code", code);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "syscall", sc);
  napi_value errnum;
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_throw(env, error);
  return NULL;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[IFNAMSIZ] = {0};
  char path[256] = {0};
  size_t n;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok
      || napi_get_value_string_utf8(env, argv[1], path, sizeof path, &n) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "open(ifname: string, clonePath: string)");
    return NULL;
  }
  int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open", path);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "ioctl", "TUNSETIFF");
  }
  napi_value out, jfd, jname;
  napi_create_array_with_length(env, 2, &out);
  napi_create_int32(env, fd, &jfd);
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &jname);
  napi_set_element(env, out, 0, jfd);
  napi_set_element(env, out, 1, jname);
  return out;
}

/** (fd, u8, off, len) -> the fd and a checked pointer range; false (a TypeError thrown) if bad. */
static int frame_args(napi_env env, napi_callback_info info, int *fd, unsigned char **p, size_t *len) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type type;
  size_t length;
  void *data;
  uint32_t off, n;
  bool is_ta = false;
  if (argc < 4 || napi_get_value_int32(env, argv[0], fd) != napi_ok
      || napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta
      || napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok
      || type != napi_uint8_array
      || napi_get_value_uint32(env, argv[2], &off) != napi_ok
      || napi_get_value_uint32(env, argv[3], &n) != napi_ok
      || (size_t)off + n > length || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "(fd: number, u8: Uint8Array, off: number, len: number) with off+len within u8");
    return 0;
  }
  *p = (unsigned char *)data + off;
  *len = n;
  return 1;
}

static napi_value result(napi_env env, ssize_t r) {
  napi_value v;
  napi_create_int32(env, r < 0 ? -errno : (int32_t)r, &v);
  return v;
}

static napi_value js_read(napi_env env, napi_callback_info info) {
  int fd;
  unsigned char *p;
  size_t len;
  if (!frame_args(env, info, &fd, &p, &len)) return NULL;
  return result(env, read(fd, p, len));
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  int fd;
  unsigned char *p;
  size_t len;
  if (!frame_args(env, info, &fd, &p, &len)) return NULL;
  return result(env, write(fd, p, len));
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "EINVAL", "close(fd: number)");
    return NULL;
  }
  close(fd);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"read", NULL, js_read, NULL, NULL, NULL, napi_enumerable, NULL},
    {"write", NULL, js_write, NULL, NULL, NULL, napi_enumerable, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
