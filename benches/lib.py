"""What the table renderers of compare.sh and qos.sh share: reading their
raw files and taking medians. Each script keeps its own rows, ratio format
and text; they import this with `sys.path.insert(0, "benches")`."""

import re
import statistics


def read_raw(path):
    """The runs of a raw file, as {(case, broker): [fields of each run]},
    its `# key: value` lines as {key: value}, and med(case, broker, key),
    the median of those runs (see median).

    A run is a line `case=CASE rep=N [key=value...] RESULT key=value...`;
    its fields are the key=value pairs after rep=N, both sides of RESULT.
    """
    runs, meta = {}, {}
    for line in open(path):
        if line.startswith("# "):
            k, _, v = line[2:].partition(": ")
            meta[k] = v.strip()
            continue
        if not line.startswith("case="):
            continue
        head, _, rest = line.partition(" RESULT ")
        case = re.match(r"case=(.*?) rep=", head).group(1)
        kv = dict(re.findall(r"(\S+?)=(\S+)", head.split(" rep=")[1] + " " + rest))
        runs.setdefault((case, kv.get("broker")), []).append(kv)
    return runs, meta, lambda case, broker, key: median(runs, case, broker, key)


def median(runs, case, broker, key):
    """The median of KEY over the runs of CASE against BROKER that have it
    as a number; None if none has."""
    vals = []
    for kv in runs.get((case, broker), []):
        try:
            vals.append(float(kv[key]))
        except (KeyError, ValueError):
            pass
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    """A table cell: n/a for None, thousands separators from 100 up, three
    significant digits below."""
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}{unit}"
    return f"{v:.3g}{unit}"
