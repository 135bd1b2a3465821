/**
 * Build step for the NVMe file backend's native addon: compiles fileio.c (from the source tree)
 * into fileio.node beside the compiled fileio.js (see ../native-build.ts).
 *
 *   node dist/src/devices/nvme/fileio-build.js        (run by `npm run build`)
 *
 * Invariant: this step never fails the build; without the addon the controller uses fs.readSync.
 */
import { buildAddon, sourceFile } from '../native-build.js';
import { FILEIO_ADDON } from './fileio.js';

console.log(`nvme fileio addon: ${buildAddon(sourceFile('devices/nvme/fileio.c'), FILEIO_ADDON, 'memory-mapped copies and batched preadv/pwritev')}`);
