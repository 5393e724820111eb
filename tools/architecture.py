#!/usr/bin/env python3
"""The shape of src/, checked: the folders are layers, each importing only the ones below
it; no file imports itself in a circle; no function runs past 80 lines unless it is named
below with the reason.

    python3 tools/architecture.py        # prints the figures; exits 1 on a violation

What counts as an import: a path through `crate::` (in `use` or inline), `super::` and
a `use` of a child module, in code before the file's `#[cfg(test)]` (tests may reach
across layers to build what they need). Comments, doc comments and `pub use` re-exports
do not count. The binary (`main.rs`, `cli/`) is on top of every layer, and its
dispatcher and commands share helpers both ways: cycles are looked for in the library.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# Bottom to top. A file of one layer may import its own layer and those before it.
LAYERS = [
    "error", "fsutil", "nn", "train", "data", "tabular", "pipeline", "inspect", "run", "export",
]
# The binary (main.rs, cli/) sits on top and may use everything; lib.rs only re-exports.
TOP = {"cli", "main", "lib"}

LONG = 80
# Functions allowed past LONG lines, and why.
EXCEPTIONS = {}


def rust_files():
    for d, _, fs in os.walk(SRC):
        for f in sorted(fs):
            if f.endswith(".rs"):
                path = os.path.join(d, f)
                yield os.path.relpath(path, SRC), open(path, encoding="utf-8").read()


def module_path(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def code(text):
    """The text before `#[cfg(test)]`, without comments, and with every string and
    character literal emptied (their line breaks kept, so that lines still count)."""
    i = text.find("#[cfg(test)]")
    text = text if i < 0 else text[:i]
    out, i, n = [], 0, len(text)
    literal = re.compile(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'")
    raw = re.compile(r'b?r(#*)"')
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif (m := raw.match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif text[i] == "'" and (m := literal.match(text, i)):
            out.append("' '")
            i = m.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def expand(prefix, body, out):
    """The paths of a `use` tree (`a::{b, c::d}`)."""
    body = body.strip()
    if body.startswith("{") and body.endswith("}"):
        depth, cur = 0, ""
        for ch in body[1:-1] + ",":
            if ch == "," and depth == 0:
                if cur.strip():
                    expand(prefix, cur, out)
                cur = ""
                continue
            depth += (ch == "{") - (ch == "}")
            cur += ch
        return
    if "::" in body:
        head, rest = body.split("::", 1)
        expand(prefix + [head.strip()], rest, out)
    else:
        out.append(prefix + [body.split(" as ")[0].strip()])


def imports(rel, text, modules):
    """The files `rel` imports, by resolving each path to the longest module it names."""
    here = module_path(rel)
    paths = []
    body = code(text)
    # `pub use` re-exports a child's item under its parent's name: not a dependency.
    for m in re.finditer(r"(?<!pub )(?<!pub\(crate\) )\buse\s+([^;]+);", body, re.S):
        expand([], m.group(1).replace("\n", " "), paths)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", body):
        paths.append(m.group(1).split("::"))
    found = set()
    for p in paths:
        if p[0] == "crate":
            absolute = p[1:]
        elif p[0] == "super":
            base, rest = here[:-1], p[1:]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
            absolute = base + rest
        elif p[0] == "self":
            absolute = here + p[1:]
        else:
            # A `use child::…` of a module declared in this one (or an outside crate).
            absolute = here + p
        for k in range(len(absolute), 0, -1):
            target = modules.get(tuple(absolute[:k]))
            if target:
                if target != rel:
                    found.add(target)
                break
    return found


def layer_of(rel):
    top = module_path(rel)[0] if module_path(rel) else "lib"
    return top


def cycles(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def long_functions(rel, text):
    lines = code(text).split("\n")
    out, i = [], 0
    header = re.compile(r"\s*(pub(\([a-z]+\))?\s+)?(const\s+)?(unsafe\s+)?fn\s+([A-Za-z_0-9]+)")
    while i < len(lines):
        m = header.match(lines[i])
        if not m or lines[i].rstrip().endswith(";"):
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            s = re.sub(r"'(\\.|[^'\\])'", "''", lines[j])
            depth += s.count("{") - s.count("}")
            started = started or "{" in s
            if started and depth <= 0:
                break
            if not started and s.rstrip().endswith(";"):
                break
            j += 1
        if j - i + 1 > LONG:
            out.append((j - i + 1, f"{rel}:{m.group(5)}"))
        i = j + 1 if started else i + 1
    return out


def main():
    files = dict(rust_files())
    modules = {tuple(module_path(rel)): rel for rel in files}
    edges = {rel: imports(rel, text, modules) for rel, text in files.items()}
    bad = []
    for rel, targets in sorted(edges.items()):
        mine = layer_of(rel)
        if mine in TOP:
            continue
        for t in sorted(targets):
            theirs = layer_of(t)
            if theirs in TOP or LAYERS.index(theirs) > LAYERS.index(mine):
                bad.append(f"{rel} ({mine}) imports {t} ({theirs}), a layer above it")
    library = {r: {t for t in ts if layer_of(t) not in TOP} for r, ts in edges.items() if layer_of(r) not in TOP}
    circles = cycles(library)
    long = sorted((f for rel, text in files.items() for f in long_functions(rel, text)), reverse=True)
    unexcused = [(n, name) for n, name in long if name not in EXCEPTIONS]
    print(f"{len(files)} files in src/; layers, bottom to top: {' < '.join(LAYERS)} < cli")
    print(f"imports against the layers: {len(bad)}")
    for b in bad:
        print(f"  {b}")
    print(f"import cycles between files: {len(circles)}")
    for c in circles:
        print(f"  {' -> '.join(c)}")
    print(f"functions over {LONG} lines: {len(long)} ({len(unexcused)} not excused)")
    for n, name in long:
        reason = EXCEPTIONS.get(name)
        print(f"  {n:4d} {name}" + (f"  (excused: {reason})" if reason else ""))
    return 1 if bad or circles or unexcused else 0


if __name__ == "__main__":
    sys.exit(main())
