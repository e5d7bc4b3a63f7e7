// A thread's credentials as /proc/<pid>/task/<tid>/status shows them: the dump records them, a
// restore compares the stub's with them.

import type { Credentials } from '../extension-model.js';
import { ProcParseError } from './errors.js';
import { statusField, statusMask } from './status.js';

function ids(status: string, name: string, where: string): [number, number, number, number] {
  const values = (statusField(status, name) ?? '').split(/\s+/).map(Number);
  if (values.length !== 4 || values.some((v) => !Number.isInteger(v))) throw new ProcParseError(where, 0, `a ${name} line of four ids`, statusField(status, name) ?? '');
  return values as [number, number, number, number];
}

/** The supplementary groups of a status file. */
export function statusGroups(status: string): number[] {
  return (statusField(status, 'Groups') ?? '').split(/\s+/).filter(Boolean).map(Number);
}

export function parseCredentials(status: string, where: string): Credentials {
  return {
    uids: ids(status, 'Uid', where),
    gids: ids(status, 'Gid', where),
    groups: statusGroups(status),
    caps: {
      inheritable: statusMask(status, 'CapInh'), permitted: statusMask(status, 'CapPrm'), effective: statusMask(status, 'CapEff'),
      bounding: statusMask(status, 'CapBnd'), ambient: statusMask(status, 'CapAmb'),
    },
    noNewPrivs: statusField(status, 'NoNewPrivs') === '1',
  };
}

/** Everything but no_new_privs (which only ever goes one way), in one comparable line. */
export function credentialsText(c: Credentials): string {
  const { caps } = c;
  return `uids ${c.uids.join('/')} gids ${c.gids.join('/')} groups ${c.groups.join(',')} caps ` +
    [caps.inheritable, caps.permitted, caps.effective, caps.bounding, caps.ambient].map((set) => set.toString(16)).join('/');
}
