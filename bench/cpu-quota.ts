// Holds a process to a CPU quota with a cgroup of its own: cgroup v2 `cpu.max` when the unified
// hierarchy has the cpu controller, else cgroup v1 `cpu.cfs_quota_us` (this machine's hybrid layout).
// The process enters its cgroup before it execs (a shell writes its own pid, then execs the command),
// so every thread and child it ever starts is held too.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PERIOD_US = 100_000;

export interface CpuQuota {
  /** 'v2 cpu.max' or 'v1 cpu.cfs_quota_us' */
  mechanism: string;
  /** the argv that runs `argv` inside this cgroup */
  wrap(argv: string[]): [string, string[]];
  /** CPU time used so far by the cgroup's processes, in ms (undefined when the hierarchy does not say) */
  usedMs(): number | undefined;
  /** removes the cgroup (its processes must have exited) */
  remove(): void;
}

function hierarchy(): { kind: 'v2' | 'v1'; root: string } {
  const v2 = '/sys/fs/cgroup/cgroup.controllers';
  if (existsSync(v2) && readFileSync(v2, 'utf8').split(/\s+/).includes('cpu')) return { kind: 'v2', root: '/sys/fs/cgroup' };
  if (existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) return { kind: 'v1', root: '/sys/fs/cgroup/cpu' };
  throw new Error('no writable cgroup cpu controller (neither v2 cpu.max nor v1 cpu.cfs_quota_us)');
}

/** A new cgroup `name` allowed `cpus` CPUs (e.g. 0.33) per period. Needs write access to the hierarchy. */
export function cpuQuota(name: string, cpus: number): CpuQuota {
  const h = hierarchy();
  const dir = join(h.root, name);
  mkdirSync(dir, { recursive: true });
  const quota = Math.round(cpus * PERIOD_US);
  if (h.kind === 'v2') {
    writeFileSync(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
  } else {
    writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
    writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
  }
  return {
    mechanism: h.kind === 'v2' ? 'v2 cpu.max' : 'v1 cpu.cfs_quota_us',
    wrap: (argv) => ['sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, ...argv]],
    usedMs: () => cgroupUsedMs(h.kind, dir),
    remove: () => { try { rmdirSync(dir); } catch { /* still busy: left for the next run's mkdir */ } },
  };
}

/**
 * v2: cpu.stat usage_usec; v1: cpuacct.usage (ns) when cpuacct is co-mounted with cpu, else the sum of
 * the group's processes' utime + stime (/proc/PID/stat, clock ticks of 10 ms).
 */
function cgroupUsedMs(kind: 'v2' | 'v1', dir: string): number | undefined {
  try {
    if (kind === 'v2') {
      const m = /usage_usec (\d+)/.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'));
      return m ? Number(m[1]) / 1000 : undefined;
    }
    if (existsSync(join(dir, 'cpuacct.usage'))) return Number(readFileSync(join(dir, 'cpuacct.usage'), 'utf8')) / 1e6;
    let ticks = 0;
    for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      // the fields after the command's closing parenthesis: utime and stime are the 12th and 13th
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    }
    return ticks * 10;
  } catch { return undefined; }
}
