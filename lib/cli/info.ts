import type { Command } from 'commander';
import { cudaAvailable, cudaDeviceCount, torchVersion } from '../index';

export function register(program: Command): void {
  program
    .command('info')
    .description('print the LibTorch version the addon was built against and the CUDA devices it sees')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const info = {
        smoothce: require('../../package.json').version as string,
        torch: torchVersion(),
        cudaAvailable: cudaAvailable(),
        cudaDevices: cudaDeviceCount(),
        node: process.version,
      };
      if (opts.json) console.log(JSON.stringify(info));
      else for (const [k, v] of Object.entries(info)) console.log(`${k.padEnd(14)} ${v}`);
    });
}
