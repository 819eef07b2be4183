#!/usr/bin/env python3
"""Sums a callgrind out file per function, with inlined code folded into the
function it was inlined in (callgrind_annotate splits it by source file):
self and inclusive instructions and calls received, per probe.

  callgrind_sum.py FILE PROBE_FUNCTION [TOP]

PROBE_FUNCTION is called once per probe (e.g. `socket`); the figures are
divided by its call count. Used by tests/bench/host_check_cpu.sh."""
import re
import sys
from collections import defaultdict

path, probe_fn = sys.argv[1], sys.argv[2]
top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
names = {}


def name(spec):
    # "(id) name" defines a compressed name, "(id)" refers to one.
    m = re.match(r"\((\d+)\)(?:\s+(.*))?$", spec)
    if not m:
        return spec
    if m.group(2) is not None:
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), spec)


self_cost = defaultdict(int)
callee_cost = defaultdict(int)
calls = defaultdict(int)
fn = cfn = None
after_calls = False
with open(path) as f:
    for line in f:
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        if line.startswith("fn="):
            fn = name(line[3:])
        elif line.startswith("cfn="):
            cfn = name(line[4:])
        elif line.startswith("calls="):
            calls[cfn] += int(line[6:].split()[0])
            after_calls = True
        elif line[0] in "0123456789+-*":
            parts = line.split()
            cost = int(parts[-1]) if len(parts) > 1 else 0
            if after_calls:
                # The line after calls= is the callee's inclusive cost.
                if cfn != fn:
                    callee_cost[fn] += cost
                after_calls = False
            else:
                self_cost[fn] += cost

total = sum(self_cost.values())
probes = calls.get(probe_fn, 0)
if probes == 0:
    print(f"total Ir {total:,}; no call to {probe_fn}")
    sys.exit(0)
print(f"total Ir {total:,}; {probes} probes ({probe_fn} calls); Ir per probe {total / probes:,.0f}")
print(f"{'self':>8} {'incl':>8} {'calls':>7}  per probe, function")
for f, s in sorted(self_cost.items(), key=lambda kv: -kv[1])[:top]:
    print(f"{s / probes:8.1f} {(s + callee_cost[f]) / probes:8.1f} {calls[f] / probes:7.3f}  {f[:140]}")
