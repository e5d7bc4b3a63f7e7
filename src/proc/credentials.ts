// A thread's credentials as /proc/<pid>/task/<tid>/status shows them: the dump records them, a
// restore compares the stub's with them.

import type { Credentials } from '../extension-model.js';
import { ProcParseError } from './errors.js';

function field(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1];
}

function ids(status: string, name: string, where: string): [number, number, number, number] {
  const values = (field(status, name) ?? '').trim().split(/\s+/).map(Number);
  if (values.length !== 4 || values.some((v) => !Number.isInteger(v))) throw new ProcParseError(where, 0, `a ${name} line of four ids`, field(status, name) ?? '');
  return values as [number, number, number, number];
}

function capabilitySet(status: string, name: string): bigint {
  return BigInt(`0x${(field(status, name) ?? '').trim() || '0'}`);
}

/** The supplementary groups of a status file. */
export function statusGroups(status: string): number[] {
  return (field(status, 'Groups') ?? '').split(/\s+/).filter(Boolean).map(Number);
}

export function parseCredentials(status: string, where: string): Credentials {
  return {
    uids: ids(status, 'Uid', where),
    gids: ids(status, 'Gid', where),
    groups: statusGroups(status),
    caps: {
      inheritable: capabilitySet(status, 'CapInh'), permitted: capabilitySet(status, 'CapPrm'), effective: capabilitySet(status, 'CapEff'),
      bounding: capabilitySet(status, 'CapBnd'), ambient: capabilitySet(status, 'CapAmb'),
    },
    noNewPrivs: (field(status, 'NoNewPrivs') ?? '').trim() === '1',
  };
}

/** Everything but no_new_privs (which only ever goes one way), in one comparable line. */
export function credentialsText(c: Credentials): string {
  const { caps } = c;
  return `uids ${c.uids.join('/')} gids ${c.gids.join('/')} groups ${c.groups.join(',')} caps ` +
    [caps.inheritable, caps.permitted, caps.effective, caps.bounding, caps.ambient].map((set) => set.toString(16)).join('/');
}
