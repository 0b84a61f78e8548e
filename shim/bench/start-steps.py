#!/usr/bin/env python3
"""start-steps.py PERF_DATA: per-step times of the berth start path (ctr -> berth-shim start -> serve
-> runtime create/start) from the sched/syscall tracepoints shim-ab.sh records, per shim binary."""
import re, sys, subprocess, statistics
out = subprocess.run(["perf","script","-i",sys.argv[1],"-F","comm,pid,tid,time,event,trace"],capture_output=True,text=True).stdout
runs=[]; cur=None
shim_pids=set(); serve=None; rt={}
for line in out.splitlines():
    m = re.match(r'\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)', line)
    if not m: continue
    comm,pid,tid,t,ev,tr = m.groups(); pid=int(pid); t=float(t)*1000
    if ev.startswith('sched:sched_process_exec'):
        fn = re.search(r'filename=(\S+)', tr).group(1)
        if fn=='/usr/bin/ctr':
            cur={'ctr':t,'ctrpid':pid}; runs.append(cur); continue
        if cur is None: continue
        if fn.endswith('/berth-shim') and 'start' not in cur: cur['start']=t; cur['startpid']=pid; cur['build']=fn
        elif fn=='/proc/self/exe':
            if 'serve' not in cur: cur['serve']=t; cur['servepid']=pid
            elif 'rt_create' not in cur: cur['rt_create']=t; cur['rtc_pid']=pid
            elif 'rt_start' not in cur: cur['rt_start']=t; cur['rts_pid']=pid
        elif fn=='/bin/sleep' or fn=='/bin/true': cur['cexec']=t
    elif ev.startswith('sched:sched_process_fork') and cur is not None:
        if pid==cur.get('startpid') and 'fork' not in cur: cur['fork']=t
    elif ev.startswith('sched:sched_process_exit') and cur is not None:
        if 'group_dead=true' not in tr: continue
        if pid==cur.get('startpid'): cur['start_exit']=t
        if pid==cur.get('rtc_pid'): cur['rt_create_exit']=t
        if pid==cur.get('rts_pid'): cur['rt_start_exit']=t
        if pid==cur.get('ctrpid'): cur['ctr_exit']=t
    elif ev.startswith('syscalls:sys_enter_accept4') and cur is not None:
        if pid==cur.get('servepid') and 'accept' not in cur: cur['accept']=t
    elif ev.startswith('syscalls:sys_enter_mount') and cur is not None:
        if pid==cur.get('servepid') and 'mount' not in cur: cur['mount']=t
steps=[('ctr','start','ctr exec -> shim start exec (ctr+berthd before shim)'),
 ('start','fork','start: exec -> fork of serve'),
 ('fork','serve','fork -> serve exec'),
 ('serve','start_exit','serve exec -> start exits (ready)'),
 ('start_exit','accept','start exit -> serve accepts berthd'),
 ('accept','mount','accept -> rootfs mount (Connect+Create rpc)'),
 ('mount','rt_create','mount -> runtime create exec'),
 ('rt_create','rt_create_exit','runtime create'),
 ('rt_create_exit','rt_start','create exit -> runtime start exec (Create reply, ctr, Start rpc)'),
 ('rt_start','rt_start_exit','runtime start'),
 ('rt_start_exit','ctr_exit','runtime start exit -> ctr exit'),
 ('ctr','ctr_exit','TOTAL ctr run')]
for build in sorted(set(r.get('build','?') for r in runs)):
  print("==", build)
  for a,b,name in steps:
    v=[r[b]-r[a] for r in runs if a in r and b in r and r.get('build')==build]
    if v: print(f"{name:62s} n={len(v):2d} median {statistics.median(v):7.2f} ms  min {min(v):7.2f} max {max(v):7.2f}")
