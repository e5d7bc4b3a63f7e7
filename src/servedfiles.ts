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
