// The process being dumped: bench/fill.c with N MiB of touched anonymous memory.

import { spawn } from 'node:child_process';
import { cleanup } from './cleanup.js';
import { exited, killAndReap } from './procs.js';

export interface Target {
  pid: number;
  /** Start address and length of the filled region. */
  address: bigint;
  bytes: number;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

export async function startFill(binary: string, mib: number): Promise<Target> {
  const child = spawn(binary, [String(mib)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const registration = cleanup.add(`kill the ${mib} MiB target`, () => killAndReap(child));
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${mib} MiB target printed no ready line in ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(stdout.slice(0, newline));
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`the ${mib} MiB target exited (${child.exitCode ?? child.signalCode}) before it was ready: ${stderr.trim()}`));
    });
  }).catch(async (err: Error) => {
    await registration.now();
    throw err;
  });
  const [word, address, bytes] = ready.split(' ');
  if (word !== 'ready' || exited(child)) throw new Error(`the ${mib} MiB target said '${ready}' instead of 'ready <addr> <bytes>'`);
  return { pid: child.pid!, address: BigInt(`0x${address}`), bytes: Number(bytes), stop: registration.now };
}
