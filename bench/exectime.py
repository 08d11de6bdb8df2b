#!/usr/bin/env python3
"""bench/idle.sh uses it. exectime.py N name=cmd... : runs each command N times, interleaved, timing the exec itself (posix_spawn to wait4)
and reading the child's rusage (CPU, minor faults). Run it inside the netns (ip netns exec X python3 exectime.py)."""
import os, sys, time, shlex, statistics
n = int(sys.argv[1])
variants = [(a.split('=', 1)[0], shlex.split(a.split('=', 1)[1])) for a in sys.argv[2:]]
res = {k: [] for k, _ in variants}
devnull = os.open(os.devnull, os.O_WRONLY)
fa = [(os.POSIX_SPAWN_DUP2, devnull, 1)]
for i in range(n + 3):
    for k, argv in variants:
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
        if i >= 3:  # warm-up
            res[k].append(((t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3, ru.ru_minflt, os.waitstatus_to_exitcode(status)))
def q(v, p): v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))]
print(f"load {open('/proc/loadavg').read().split()[0:3]}  runs {n}")
print(f"{'variant':14} {'wall p50':>9} {'p90':>7} {'min':>7} {'cpu p50':>8} {'cpu mean':>8} {'minflt':>7} rc")
for k, _ in variants:
    r = res[k]
    w = [x[0] for x in r]; c = [x[1] for x in r]; f = [x[2] for x in r]
    print(f"{k:14} {q(w,.5):9.2f} {q(w,.9):7.2f} {min(w):7.2f} {q(c,.5):8.2f} {statistics.mean(c):8.2f} {q(f,.5):7d} {set(x[3] for x in r)}")
