/**
 * `redleaf disk create IMAGE --size 1G [--force]`: a blank disk image (sparse, all zeros), made
 * under a temporary name and renamed into place, so a failure (a size the host's file system
 * refuses, no room, no permission) leaves no file behind and an existing image as it was.
 * `redleaf disk info IMAGE [--block-size 512|4096]`: boot the controller and the nvme driver
 * domain on it and print what Identify reports. It writes nothing, so it works on an image the
 * user may only read: the controller then presents a write-protected namespace, which it reports.
 */
import { accessSync, closeSync, constants, ftruncateSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command } from 'commander';
import { formatSize, sizeOption } from './options.js';
import { bootStorage } from '../host/storage.js';
import { hostReason, replaceFile } from '../host/host-files.js';

export function register(program: Command): void {
  const disk = program.command('disk').description('disk images: create, info');
  disk
    .command('create')
    .description('create a blank disk image (refuses to overwrite an existing file unless --force)')
    .argument('<image>', 'image file to create')
    // Commander's help does not mark a required option: the description says it.
    .requiredOption('--size <size>', 'image size (required), e.g. 512M or 1G', sizeOption('--size'))
    .option('--force', 'overwrite an existing file', false)
    .option('--block-size <n>', 'block size the image is meant for (512 or 4096)', '512')
    .action(async (image: string, o: { size: number; force: boolean; blockSize: string }) => {
      const bs = Number(o.blockSize);
      if (bs !== 512 && bs !== 4096) throw new Error(`--block-size must be 512 or 4096, got ${o.blockSize}`);
      if (o.size % bs !== 0) throw new Error(`size ${o.size} is not a multiple of the ${bs}-byte block size`);
      const st = statSync(image, { throwIfNoEntry: false });
      if (st?.isDirectory()) throw new Error(`disk create: ${image} is a directory`);
      if (st && !o.force) throw new Error(`${image} exists already; use --force to overwrite it`);
      if (st && !st.isFile()) throw new Error(`disk create: ${image} is not a regular file; refusing to overwrite it`);
      if (st) {
        try {
          accessSync(image, constants.W_OK);
        } catch {
          throw new Error(`disk create: ${image} is not writable; refusing to replace it`);
        }
      }
      try {
        await replaceFile(resolve(image), (tmp) => {
          const fd = openSync(tmp, 'wx');
          try {
            ftruncateSync(fd, o.size);
          } finally {
            closeSync(fd);
          }
        });
      } catch (e) {
        const why = hostReason(e, {
          ENOENT: `directory ${dirname(resolve(image))} does not exist`,
          EFBIG: `${formatSize(o.size)} is more than the host's file system allows for one file`,
        });
        throw new Error(`disk create: cannot create ${image}: ${why}`);
      }
      console.log(`created ${image}: ${formatSize(o.size)} (${o.size / bs} blocks of ${bs} bytes)`);
    });
  disk
    .command('info')
    .description('boot the NVMe controller and driver on an image and print what Identify reports')
    .argument('<image>', 'disk image file')
    .option('--block-size <n>', 'block size (512 or 4096)', '512')
    .action(async (image: string, o: { blockSize: string }) => {
      const bs = Number(o.blockSize);
      if (bs !== 512 && bs !== 4096) throw new Error(`--block-size must be 512 or 4096, got ${o.blockSize}`);
      const s = await bootStorage({ image, blockSize: bs, physBytes: 16 << 20 });
      try {
        const d = s.driver;
        const blocks = d.blockCount();
        const size = d.blockSize();
        console.log(`image:      ${image}`);
        console.log(`model:      ${d.model()}`);
        console.log(`serial:     ${d.serial()}`);
        console.log(`block size: ${size}`);
        console.log(`blocks:     ${blocks}`);
        console.log(`capacity:   ${formatSize(blocks * size)} (${blocks * size} bytes)`);
        console.log(`access:     ${d.readOnly() ? 'read-only (the namespace is write protected)' : 'read-write'}`);
      } finally {
        await s.stop();
      }
    });
}
