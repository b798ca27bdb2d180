#!/usr/bin/env python3
"""Instructions per replay phase from a callgrind output (bench/instructions.sh).

    python3 bench/instructions_by_phase.py NEW.callgrind [BASELINE.callgrind]

Sums what the replay loop calls directly, by the phase the replay's timers put
it in; with a baseline, prints both and the change.
"""
import re
import subprocess
import sys

PHASES = [
    ("client apply (merge)", ["ClientReplica.apply(_:wall:)"]),
    ("server push (merge)", ["InMemorySyncServer.push(_:device:now:)"]),
    ("server pull (in encode)", ["InMemorySyncServer.pull(_:device:push:now:)"]),
    ("decode (server and client)", ["BinaryCodable.init(binary:)"]),
    ("encode (server and client)", ["BinaryCodable.binaryEncoded()"]),
    ("request (in encode)", ["ClientReplica.makeRequest("]),
    ("edit", ["ClientReplica.set(", "ClientReplica.appendLog(", "ClientReplica.insertItem(", "ClientReplica.removeItem(",
              "ClientReplica.liveOrder(", "ClientReplica.liveCount(", "ItemCollection.liveItems", "ClientReplica.view("]),
]


def load(path):
    text = subprocess.run(["callgrind_annotate", "--tree=caller", "--inclusive=yes", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout
    text = subprocess.run(["swift-demangle", "--simplified", "--compact"], input=text,
                          capture_output=True, text=True, check=True).stdout
    costs, callers = {}, []
    for line in text.split("\n"):
        match = re.match(r"\s*([\d,]+) \(.*?\)\s+([<*])\s+(.*)$", line)
        if not match:
            callers = []
            continue
        cost, kind, name = int(match.group(1).replace(",", "")), match.group(2), match.group(3)
        if kind == "<":
            callers.append((cost, name))
            continue
        function = re.sub(r"^\S*?:", "", name.split(" [")[0])
        for caller_cost, caller in callers:
            if "Replay.run(_:)" in caller:
                costs[function] = costs.get(function, 0) + caller_cost
        callers = []
    phases = {}
    for phase, names in PHASES:
        phases[phase] = sum(cost for function, cost in costs.items() if any(n in function for n in names))
    return phases


runs = [load(path) for path in sys.argv[1:]][::-1]  # baseline first
total = [sum(run.values()) for run in runs]
for phase, _ in PHASES + [("measured phases", None)]:
    values = [run[phase] for run in runs] if phase != "measured phases" else total
    line = "  ".join(f"{value / 1e6:9.1f}M" for value in values)
    change = f"  {100 * (values[-1] - values[0]) / values[0]:+6.1f}%" if len(values) > 1 and values[0] else ""
    print(f"{phase:28s} {line}{change}")
