// The files this process serves. A process may map one of them (a core, say); its pages that are
// not in memory come from a read request to this very process, whose main thread, the only one
// that answers, would be the one waiting for it: the whole mount would hang. Such mappings are
// never read: no page of them is indexed, and a core's bytes of them are zeros, as the kernel
// writes for pages it cannot get.

import type { Vma } from './model.js';

/** Devices (as maps prints them) of the file systems mounted by this process. */
const servedDevices = new Set<string>();

export function serveDevice(device: string): void {
  servedDevices.add(device);
}

export function isServedHere(vma: Vma): boolean {
  return servedDevices.has(vma.dev);
}

/** Whether a file of this device (glibc's makedev encoding, as stat gives it) is one we serve. */
export function isServedFile(dev: bigint): boolean {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return servedDevices.has(`${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`);
}
