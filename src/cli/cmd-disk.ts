/**
 * `redleaf disk create IMAGE --size 1G [--force]`: a blank disk image (sparse, all zeros).
 * `redleaf disk info IMAGE [--block-size 512|4096]`: boot the controller and the nvme driver
 * domain on it and print what Identify reports.
 */
import { existsSync, openSync, closeSync, ftruncateSync } from 'node:fs';
import { Command } from 'commander';
import { formatSize, sizeOption } from './options.js';
import { bootStorage } from '../host/storage.js';

export function register(program: Command): void {
  const disk = program.command('disk').description('disk images: create, info');
  disk
    .command('create')
    .description('create a blank disk image (refuses to overwrite an existing file unless --force)')
    .argument('<image>', 'image file to create')
    .requiredOption('--size <size>', 'image size, e.g. 512M or 1G', sizeOption('--size'))
    .option('--force', 'overwrite an existing file', false)
    .option('--block-size <n>', 'block size the image is meant for (512 or 4096)', '512')
    .action((image: string, o: { size: number; force: boolean; blockSize: string }) => {
      const bs = Number(o.blockSize);
      if (bs !== 512 && bs !== 4096) throw new Error(`--block-size must be 512 or 4096, got ${o.blockSize}`);
      if (o.size % bs !== 0) throw new Error(`size ${o.size} is not a multiple of the ${bs}-byte block size`);
      if (existsSync(image) && !o.force) throw new Error(`${image} exists already; use --force to overwrite it`);
      const fd = openSync(image, 'w');
      try {
        ftruncateSync(fd, o.size);
      } finally {
        closeSync(fd);
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
      } finally {
        await s.stop();
      }
    });
}
