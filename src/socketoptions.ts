// The socket options a dump records of a listening or bound socket, and a restore sets again
// before it binds: the ones a program sets on such a socket and its clients or datagrams depend
// on (a deferred accept, keepalive and buffer sizes that connections inherit, the ancillary data
// a DNS or DHCP server reads, the device or mark it is tied to). SO_REUSEADDR, SO_REUSEPORT and
// IPV6_V6ONLY are BOUND_SOCKET's own fields.

import { IPPROTO_TCP, SOL_SOCKET } from './extension-model.js';
import { IPPROTO_IPV6 } from './ptrace/syscalls.js';

const IPPROTO_IP = 0;

export interface SocketOptionName {
  level: number;
  name: number;
  label: string;
  /**
   * A buffer size: getsockopt answers twice what setsockopt took (the kernel's bookkeeping), and
   * the FORCE option sets it beyond the system's maximum, as the program may have.
   */
  forceName?: number;
  /** Its value is a name (a device, a congestion control algorithm), not a number. */
  isName?: true;
}

const option = (level: number, name: number, label: string, forceName?: number): SocketOptionName =>
  ({ level, name, label, ...(forceName === undefined ? {} : { forceName }) });
const nameOption = (level: number, name: number, label: string): SocketOptionName => ({ level, name, label, isName: true });

export const SOCKET_OPTIONS: readonly SocketOptionName[] = [
  option(SOL_SOCKET, 6, 'SO_BROADCAST'),
  option(SOL_SOCKET, 7, 'SO_SNDBUF', 32),
  option(SOL_SOCKET, 8, 'SO_RCVBUF', 33),
  option(SOL_SOCKET, 9, 'SO_KEEPALIVE'),
  option(SOL_SOCKET, 10, 'SO_OOBINLINE'),
  option(SOL_SOCKET, 12, 'SO_PRIORITY'),
  option(SOL_SOCKET, 13, 'SO_LINGER'),
  option(SOL_SOCKET, 16, 'SO_PASSCRED'),
  option(SOL_SOCKET, 18, 'SO_RCVLOWAT'),
  option(SOL_SOCKET, 20, 'SO_RCVTIMEO'),
  option(SOL_SOCKET, 21, 'SO_SNDTIMEO'),
  nameOption(SOL_SOCKET, 25, 'SO_BINDTODEVICE'),
  option(SOL_SOCKET, 29, 'SO_TIMESTAMP'),
  option(SOL_SOCKET, 34, 'SO_PASSSEC'),
  option(SOL_SOCKET, 35, 'SO_TIMESTAMPNS'),
  option(SOL_SOCKET, 36, 'SO_MARK'),
  option(SOL_SOCKET, 40, 'SO_RXQ_OVFL'),
  option(IPPROTO_TCP, 1, 'TCP_NODELAY'),
  option(IPPROTO_TCP, 2, 'TCP_MAXSEG'),
  option(IPPROTO_TCP, 4, 'TCP_KEEPIDLE'),
  option(IPPROTO_TCP, 5, 'TCP_KEEPINTVL'),
  option(IPPROTO_TCP, 6, 'TCP_KEEPCNT'),
  option(IPPROTO_TCP, 7, 'TCP_SYNCNT'),
  option(IPPROTO_TCP, 8, 'TCP_LINGER2'),
  option(IPPROTO_TCP, 9, 'TCP_DEFER_ACCEPT'),
  option(IPPROTO_TCP, 10, 'TCP_WINDOW_CLAMP'),
  nameOption(IPPROTO_TCP, 13, 'TCP_CONGESTION'),
  option(IPPROTO_TCP, 18, 'TCP_USER_TIMEOUT'),
  option(IPPROTO_TCP, 23, 'TCP_FASTOPEN'),
  option(IPPROTO_TCP, 25, 'TCP_NOTSENT_LOWAT'),
  option(IPPROTO_IP, 1, 'IP_TOS'),
  option(IPPROTO_IP, 2, 'IP_TTL'),
  option(IPPROTO_IP, 8, 'IP_PKTINFO'),
  option(IPPROTO_IP, 10, 'IP_MTU_DISCOVER'),
  option(IPPROTO_IP, 11, 'IP_RECVERR'),
  option(IPPROTO_IP, 12, 'IP_RECVTTL'),
  option(IPPROTO_IP, 13, 'IP_RECVTOS'),
  option(IPPROTO_IP, 15, 'IP_FREEBIND'),
  option(IPPROTO_IP, 19, 'IP_TRANSPARENT'),
  option(IPPROTO_IP, 33, 'IP_MULTICAST_TTL'),
  option(IPPROTO_IP, 34, 'IP_MULTICAST_LOOP'),
  option(IPPROTO_IPV6, 16, 'IPV6_UNICAST_HOPS'),
  option(IPPROTO_IPV6, 18, 'IPV6_MULTICAST_HOPS'),
  option(IPPROTO_IPV6, 19, 'IPV6_MULTICAST_LOOP'),
  option(IPPROTO_IPV6, 23, 'IPV6_MTU_DISCOVER'),
  option(IPPROTO_IPV6, 25, 'IPV6_RECVERR'),
  option(IPPROTO_IPV6, 49, 'IPV6_RECVPKTINFO'),
  option(IPPROTO_IPV6, 51, 'IPV6_RECVHOPLIMIT'),
  option(IPPROTO_IPV6, 66, 'IPV6_RECVTCLASS'),
  option(IPPROTO_IPV6, 67, 'IPV6_TCLASS'),
  option(IPPROTO_IPV6, 75, 'IPV6_TRANSPARENT'),
  option(IPPROTO_IPV6, 78, 'IPV6_FREEBIND'),
];

/** The longest value any of them has (TCP_CONGESTION's name, SO_BINDTODEVICE's IFNAMSIZ, a timeval). */
export const SOCKET_OPTION_VALUE_MAX = 16;

/** The table's entry of an option; undefined for one it does not list (an image from a later imgfs). */
export const knownSocketOption = (level: number, name: number): SocketOptionName | undefined =>
  SOCKET_OPTIONS.find((o) => o.level === level && o.name === name);

/** "SO_RCVBUF", or "option 1/99" for one this table does not know. */
export function socketOptionLabel(level: number, name: number): string {
  return knownSocketOption(level, name)?.label ?? `option ${level}/${name}`;
}

/** `SO_RCVBUF=262144`, `SO_BINDTODEVICE="lo"`, `SO_LINGER=0x010000001e000000` (other sizes in hex, as stored). */
export function socketOptionText({ level, name, value }: { level: number; name: number; value: Buffer }): string {
  const label = socketOptionLabel(level, name);
  if (knownSocketOption(level, name)?.isName) return `${label}=${JSON.stringify(value.subarray(0, value.indexOf(0) < 0 ? value.length : value.indexOf(0)).toString('latin1'))}`;
  return value.length === 4 ? `${label}=${value.readInt32LE(0)}` : `${label}=0x${value.toString('hex')}`;
}
