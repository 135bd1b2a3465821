/**
 * `redleaf disk create IMAGE --size 1G [--force]`: a blank disk image (sparse, all zeros).
 * `redleaf disk info IMAGE [--block-size 512|4096]`: boot the controller and the nvme driver
 * domain on it and print what Identify reports.
 */
import { existsSync, openSync, closeSync, ftruncateSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { bootStorage } from '../host/storage.js';

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parse 512, 64K, 512M, 1G, 1.5G (binary units; optional trailing B / iB). */
export function parseSize(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(v);
  if (!m) throw new InvalidArgumentError(`"${v}" is not a size (try 512M or 1G)`);
  const n = Math.round(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`size "${v}" is out of range`);
  return n;
}

const fmt = (n: number): string =>
  n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : `${n} bytes`;

export function register(program: Command): void {
  const disk = program.command('disk').description('disk images: create, info');
  disk
    .command('create')
    .description('create a blank disk image (refuses to overwrite an existing file unless --force)')
    .argument('<image>', 'image file to create')
    .requiredOption('--size <size>', 'image size, e.g. 512M or 1G', parseSize)
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
      console.log(`created ${image}: ${fmt(o.size)} (${o.size / bs} blocks of ${bs} bytes)`);
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
        console.log(`capacity:   ${fmt(blocks * size)} (${blocks * size} bytes)`);
      } finally {
        await s.stop();
      }
    });
}
