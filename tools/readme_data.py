#!/usr/bin/env python3
"""Writes the small files of data/ that the README's examples read and tests/readme.rs runs.

    python3 tools/readme_data.py [DIR]     # DIR defaults to data/

Each is derived from a file of data/ or tests/data/, or made up by a rule, so running it
again writes the same bytes. data/SOURCES.md says what each one is for.
"""

import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_lines(path):
    with open(os.path.join(ROOT, path), newline="") as f:
        return f.read().splitlines()


def write(out, name, text):
    with open(os.path.join(out, name), "w", newline="") as f:
        f.write(text)


def customers(out):
    """The first 120 customers of tests/data/customers.csv without its constant `country`
    column (one age missing, on line 19), three new ones with a plan or a region no
    training row holds, and two with gaps."""
    lines = read_lines("tests/data/customers.csv")[:121]
    rows = [",".join(c for k, c in enumerate(line.split(",")) if k != 4) for line in lines]
    assert rows[0] == "age,income,plan,region,churned", rows[0]
    write(out, "customers.csv", "\n".join(rows) + "\n")
    write(
        out,
        "new_customers.csv",
        "age,income,plan,region\n"
        "41,52000,enterprise,north\n"
        "29,31000,basic,central\n"
        "63,45000,trial,islands\n",
    )
    write(
        out,
        "missing_customers.csv",
        "age,income,plan,region,churned\n,38000,,south,no\n52,61000,basic,,yes\n",
    )


def iris_numbered(out):
    """data/iris.csv with a first column `id`, the row number (1 to 150)."""
    lines = read_lines("data/iris.csv")
    rows = ["id," + lines[0]] + [f"{i},{line}" for i, line in enumerate(lines[1:], 1)]
    write(out, "iris_numbered.csv", "\n".join(rows) + "\n")


def stamps(out):
    """40 hourly-ish readings stamped in Unix seconds near 1.7e9 (45 s apart, finer than
    the 128 s an f32 resolves there), a temperature, and whether the room was busy."""
    rows = ["ts,temp,busy"]
    for i in range(40):
        temp = round(18 + 4 * math.sin(i / 3), 1)
        rows.append(f"{1_700_000_000 + 45 * i},{temp},{'yes' if temp > 19 else 'no'}")
    write(out, "stamps.csv", "\n".join(rows) + "\n")


def esc(out):
    """A column name with a line break in it (quoted), and a label holding a terminal-title
    escape sequence: real ESC (0x1b) and BEL (0x07) bytes."""
    rows = ['"wid\nth",size,kind']
    for i in range(40):
        if i % 2 == 0:
            rows.append(f"{i % 7},{i % 10},\x1b]0;pwned\x07red")
        else:
            rows.append(f"{i % 5 + 3},{i % 10},blue")
    write(out, "esc.csv", "\n".join(rows) + "\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "data")
    for make in (customers, iris_numbered, stamps, esc):
        make(out)


if __name__ == "__main__":
    main()
