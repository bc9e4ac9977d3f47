import { readdirSync, readFileSync } from 'node:fs';

/**
 * Pure: the session id in a /proc/PID/stat line. The command name (field 2) sits in parentheses
 * and may itself hold spaces or parentheses, so fields are counted from the last ')'.
 */
export function sessionOfStat(stat: string): number | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  // After ')': state, ppid, pgrp, session, ...
  const sid = Number(stat.slice(close + 2).split(' ')[3]);
  return Number.isInteger(sid) ? sid : null;
}

/**
 * Every process in the shell's session: the shell leads it, and bash puts each job in a
 * process group of its own, so signalling the shell's group alone would miss background jobs.
 */
function sessionMembers(sid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (sessionOfStat(readFileSync(`/proc/${name}/stat`, 'utf8')) === sid) pids.push(+name);
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** SIGKILL the shell's process group and whatever else still runs in its session. */
export function killSession(sid: number): void {
  const targets = new Set([-sid, ...sessionMembers(sid)]);
  for (const pid of targets) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
