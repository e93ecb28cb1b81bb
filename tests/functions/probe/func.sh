#!/bin/sh
# Reports what a function may do in its container, one KEY=VALUE a line, for the
# hardening tests: network interfaces, capabilities, writable paths, cgroup limits, user.
cat >/dev/null
echo "net=$(ls /sys/class/net | tr '\n' ' ' | sed 's/ $//')"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status | sed 's/:[[:space:]]*/=/'
if touch /probe 2>/dev/null; then echo "root_write=ok"; else echo "root_write=refused"; fi
if touch /tmp/probe 2>/dev/null; then echo "tmp_write=ok"; else echo "tmp_write=refused"; fi
echo "tmp_kib=$(df -k /tmp | tail -1 | awk '{print $2}')"
cg=/sys/fs/cgroup
if [ -f $cg/pids/pids.max ]; then  # cgroup v1
  echo "pids_max=$(cat $cg/pids/pids.max)"
  echo "memory=$(cat $cg/memory/memory.limit_in_bytes)"
  echo "memory_swap=$(cat $cg/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo none)"
  echo "cpu=$(cat $cg/cpu/cpu.cfs_quota_us) $(cat $cg/cpu/cpu.cfs_period_us)"
else  # cgroup v2
  echo "pids_max=$(cat $cg/pids.max)"
  echo "memory=$(cat $cg/memory.max)"
  echo "memory_swap=$(cat $cg/memory.swap.max)"
  echo "cpu=$(cat $cg/cpu.max)"
fi
echo "id=$(id -u):$(id -g)"
echo "nofile=$(ulimit -n)"
