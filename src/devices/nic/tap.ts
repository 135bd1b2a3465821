/**
 * The tap backend's host side: loads the native addon (tap.node, compiled from tap.c at build
 * time by tap-build.ts) and attaches to a Linux TAP interface, turning every way that can fail
 * into one clear sentence that says what is missing and how to get it.
 *
 * Invariants: nothing here throws anything but an Error whose message names the interface and the
 * remedy; the addon is loaded at most once per thread; a descriptor handed out by openTap is
 * non-blocking and close-on-exec, and its owner closes it with closeTap.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The TUN/TAP clone device. */
export const TUN_CLONE = '/dev/net/tun';
/** Where the build puts the addon: beside this module. */
export const TAP_ADDON = fileURLToPath(new URL('./tap.node', import.meta.url));

/** What tap.node exports (see tap.c). read/write return bytes moved or a negative errno. */
export interface TapAddon {
  open(ifname: string, clonePath: string): [number, string];
  read(fd: number, u8: Uint8Array, off: number, len: number): number;
  write(fd: number, u8: Uint8Array, off: number, len: number): number;
  close(fd: number): void;
}

export const EAGAIN = 11;

let loaded: TapAddon | null = null;

/** The addon, or an Error saying why it cannot be had and how to get it. */
export function loadTapAddon(): TapAddon {
  if (loaded) return loaded;
  if (!existsSync(TAP_ADDON)) {
    throw new Error(`tap backend unavailable: its native addon ${TAP_ADDON} was not built (the build compiles it only when a C compiler is present); install gcc (apt-get install gcc) and run npm run build again`);
  }
  try {
    loaded = createRequire(import.meta.url)(TAP_ADDON) as TapAddon;
  } catch (e) {
    throw new Error(`tap backend unavailable: the native addon ${TAP_ADDON} does not load (${(e as Error).message}); run npm run build again`);
  }
  return loaded;
}

/** Linux interface names: 1..15 bytes, no '/', no whitespace; we allow the usual safe set. */
export function checkIfname(ifname: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) throw new RangeError(`tap: interface name "${ifname}" must be 1..15 characters of A-Z a-z 0-9 _ . -`);
}

/**
 * Attaches to TAP interface `ifname` (created if it does not exist, as TUNSETIFF does; it goes
 * away when the descriptor is closed unless it was made persistent beforehand).
 */
export function openTap(ifname: string, clonePath = TUN_CLONE): { fd: number; name: string } {
  checkIfname(ifname);
  const addon = loadTapAddon();
  if (!existsSync(clonePath)) {
    throw new Error(`tap backend: ${clonePath} does not exist, so this host offers no TUN/TAP devices (load the tun kernel module; in a container, pass the device in, e.g. --device /dev/net/tun)`);
  }
  try {
    const [fd, name] = addon.open(ifname, clonePath);
    return { fd, name };
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'EACCES' || err.code === 'EPERM') {
      throw new Error(`tap backend: permission denied attaching to TAP interface ${ifname} (${err.message}): it needs root or CAP_NET_ADMIN (and read-write access to ${clonePath})`);
    }
    if (err.code === 'EBUSY') throw new Error(`tap backend: TAP interface ${ifname} is already attached by another process (${err.message})`);
    throw new Error(`tap backend: cannot attach to TAP interface ${ifname}: ${err.message}`);
  }
}

export function closeTap(fd: number): void {
  loadTapAddon().close(fd);
}
