import { readFile } from 'node:fs/promises';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_S = 100;

/**
 * CPU seconds (user + system) a process has used so far, from
 * /proc/<pid>/stat; NaN where that is unreadable (not Linux, process gone).
 */
export async function processCpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after it are plain.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 overall, 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/**
 * Seconds a process's main thread (for Node, the JavaScript thread) has
 * spent runnable but waiting for a CPU, from Linux schedstat: how much the
 * machine, not the process's own work or its I/O, held it back. Helper
 * threads are left out: their waits overlap and would add up to more than
 * the wall time. NaN where unreadable.
 */
export async function processRunQueueSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  try {
    // "<on-cpu ns> <waiting-on-runqueue ns> <timeslices>"
    const line = await readFile(`/proc/${pid}/schedstat`, 'utf8');
    return Number(line.split(' ')[1]) / 1e9;
  } catch {
    return Number.NaN;
  }
}
