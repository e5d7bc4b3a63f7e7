// The facts a reader needs to compare numbers across machines, and the load that others put on
// this one during the run.

import { promises as fsp } from 'node:fs';
import os from 'node:os';

async function fileSystemOf(dir: string): Promise<string> {
  const mounts = (await fsp.readFile('/proc/mounts', 'utf8')).split('\n').map((line) => line.split(' '));
  const containing = mounts.filter(([, mountPoint]) => mountPoint && (dir === mountPoint || dir.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`)));
  const deepest = containing.sort((a, b) => b[1].length - a[1].length)[0];
  return deepest ? `${deepest[2]} (${deepest[0]} on ${deepest[1]})` : 'unknown';
}

async function transparentHugePages(): Promise<string> {
  const setting = await fsp.readFile('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').catch(() => 'unknown');
  return /\[(\w+)\]/.exec(setting)?.[1] ?? setting.trim();
}

export async function describeMachine(outDir: string): Promise<string> {
  const cpus = os.cpus();
  return [
    `${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'})`,
    `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM`,
    `kernel ${os.release()}`,
    `Node ${process.version}`,
    `cp/gcore write to ${await fileSystemOf(outDir)}`,
    `transparent huge pages: ${await transparentHugePages()}`,
  ].join(', ');
}

export function loadAverage(): string {
  return os.loadavg().map((load) => load.toFixed(2)).join(' ');
}

interface CpuTicks {
  busy: number;
  total: number;
}

async function systemTicks(): Promise<CpuTicks> {
  const fields = (await fsp.readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + fields[4]; // idle + iowait
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** CPU ticks of a process; with `reaped`, also of its children it has waited for (and theirs). */
async function processTicks(pid: number | 'self', reaped: boolean): Promise<number> {
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const [utime, stime, cutime, cstime] = fields.slice(11, 15); // fields 14-17 of proc(5)
  return utime + stime + (reaped ? cutime + cstime : 0);
}

/** Share of all cores busy (anyone's work) over the next `ms`: the bench's numbers only mean
 *  something on an otherwise idle machine. */
export async function cpuBusy(ms: number): Promise<number> {
  const before = await systemTicks();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = await systemTicks();
  return (after.busy - before.busy) / (after.total - before.total);
}

/** Measures the share of all cores that processes other than the bench's own used from now on.
 *  Ours: this process, every child it reaped (commands, targets), and the FS process, which must
 *  still run when the result is read. */
export async function startCpuWatch(): Promise<(fsPid: number) => Promise<number>> {
  const [system, self] = await Promise.all([systemTicks(), processTicks('self', true)]);
  return async (fsPid) => {
    const [systemNow, selfNow, fs] = await Promise.all([systemTicks(), processTicks('self', true), processTicks(fsPid, true)]);
    const ours = selfNow - self + fs;
    return Math.max(0, (systemNow.busy - system.busy - ours) / (systemNow.total - system.total));
  };
}
