/**
 * Build step for the tap backend's native addon: compiles tap.c (from the source tree) into
 * tap.node beside the compiled tap.js (see ../native-build.ts).
 *
 *   node dist/src/devices/nic/tap-build.js        (run by `npm run build`)
 *
 * Invariant: this step never fails the build. Without a compiler or headers it says so in one
 * line and leaves no addon behind, and the tap backend then refuses with the same remedy; every
 * other backend works either way.
 */
import { buildAddon, sourceFile } from '../native-build.js';
import { TAP_ADDON } from './tap.js';

console.log(`tap addon: ${buildAddon(sourceFile('devices/nic/tap.c'), TAP_ADDON, 'a TAP device')}`);
