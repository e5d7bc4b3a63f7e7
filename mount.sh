#!/usr/bin/env bash
# ./mount.sh <mountpoint> [imgfs options]   set up what is missing, mount in the background,
#                                           return once the mount answers
# ./mount.sh -u <mountpoint>                unmount (frozen tasks run on)
set -euo pipefail
root=$(dirname "$(readlink -f "$0")")
usage() { echo "usage: $0 <mountpoint> [imgfs options] | $0 -u <mountpoint>" >&2; exit 2; }
[ $# -ge 1 ] || usage

state_dir=/run/imgfs
pidfile_of() { echo "$state_dir/$(readlink -m "$1" | tr '/' '_').pid"; }
# A running process's start time (field 22 of its stat, after the name in parentheses): with its
# pid in the pid file, it tells our imgfs from a process that got its pid after it died. Fails for
# a process that has ended (a zombie its reaper has not reaped yet, too).
start_time_of() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  set -- $rest
  case "$1" in Z|X) return 1 ;; esac
  echo "${20}"
}

# Waits up to 10 s (of the clock: a loaded machine slows the loop) for process $1, started at $2,
# to end; fails if it still runs.
ended_within_10s() {
  local deadline=$((SECONDS + 10))
  while [ "$(start_time_of "$1" || true)" = "$2" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  [ "$(start_time_of "$1" || true)" != "$2" ]
}

# Whether a mount of type $2... is on $1, in /proc/mounts, which writes a space, tab, newline or
# backslash of a path as an octal escape.
mounted() {
  local path=${1//\\/\\134}
  path=${path// /\\040}
  path=${path//$'\t'/\\011}
  path=${path//$'\n'/\\012}
  grep -qF -- " $path $2" /proc/mounts
}

case "$1" in -h|--help) exec "$root/bin/imgfs" --help ;; esac
if [ "$(id -u)" -ne 0 ]; then
  echo "mount.sh: run it as root: it installs what is missing, and mounts through /dev/fuse" >&2
  exit 1
fi

if [ "$1" = "-u" ]; then
  [ $# -eq 2 ] || usage
  mnt=$(readlink -m -- "$2")
  pidfile=$(pidfile_of "$mnt")
  if [ ! -f "$pidfile" ] && ! mounted "$mnt" fuse; then
    echo "mount.sh: $mnt is not mounted" >&2
    exit 1
  fi
  if [ -f "$pidfile" ]; then
    read -r pid started <"$pidfile" || true
    if [ -n "$pid" ] && [ -n "${started:-}" ] && [ "$(start_time_of "$pid" || true)" = "$started" ]; then
      kill -TERM "$pid"
      if ! ended_within_10s "$pid" "$started"; then
        echo "mount.sh: imgfs (pid $pid) is still running 10 s after SIGTERM; $mnt stays mounted" >&2
        exit 1
      fi
    fi
  fi
  rm -f "$pidfile"
  if mounted "$mnt" fuse; then fusermount -uz "$mnt"; fi
  exit 0
fi

case "$1" in -*) echo "mount.sh: '$1': the mount point comes first: $0 <mountpoint> [imgfs options]" >&2; exit 2 ;; esac
mnt=$(readlink -m -- "$1"); shift
# A mount that answers is in the way (its options stay as they are): say so, rather than report
# it as this one. A stale one (its imgfs gone) is taken over by imgfs itself.
if mounted "$mnt" "fuse.imgfs " && [ -d "$mnt/$$" ]; then
  echo "imgfs: $mnt is already mounted; unmount it first: $0 -u $mnt" >&2
  exit 1
fi
"$root/scripts/setup.sh"
mkdir -p "$state_dir"
# The directories made here go again if the mount fails (a mistyped path leaves nothing).
first_made=""
p=$mnt
while [ ! -e "$p" ] && [ ! -L "$p" ]; do first_made=$p; p=$(dirname "$p"); done
if mounted "$mnt" fuse; then first_made=""; fi  # stale: there, though stat fails
mkdir -p "$mnt" 2>/dev/null || true  # else imgfs says what is wrong with it
log="$state_dir/$(readlink -m "$mnt" | tr '/' '_').log"
pidfile=$(pidfile_of "$mnt")

setsid "$root/bin/imgfs" "$mnt" "$@" </dev/null >"$log" 2>&1 &
pid=$!
started=$(start_time_of "$pid" || true)
echo "$pid $started" >"$pidfile"
# Ready when imgfs answers with its own tree: this script's pid is a directory there. (A plain
# listing could come from the directory under a stale mount that imgfs has just detached.)
for _ in $(seq 300); do
  if mounted "$mnt" "fuse.imgfs " && [ -d "$mnt/$$" ]; then
    echo "imgfs: mounted on $mnt (pid $pid, log $log)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    status=0
    wait "$pid" || status=$?
    rm -f "$pidfile"
    cat "$log" >&2  # imgfs's own line saying why
    rm -f "$log"
    if [ -n "$first_made" ]; then find "$first_made" -depth -type d -empty -delete 2>/dev/null || true; fi
    exit "$status"
  fi
  sleep 0.1
done
echo "imgfs: $mnt did not come up within 30 s; see $log" >&2
kill -TERM "$pid" 2>/dev/null || true
if ended_within_10s "$pid" "$started"; then
  rm -f "$pidfile"
  if [ -n "$first_made" ]; then find "$first_made" -depth -type d -empty -delete 2>/dev/null || true; fi
fi
exit 1
