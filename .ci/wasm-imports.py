#!/usr/bin/env python3
"""Fails when a Wasm module imports anything, listing the imports.

The pure core must build to a module a host can instantiate with no environment at
all: no `env` functions, no WASI, nothing (STYLE.md section 1).
"""
import sys


def leb128(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def names(data, pos, count):
    found = []
    for _ in range(count):
        parts = []
        for _ in range(2):
            length, pos = leb128(data, pos)
            parts.append(data[pos:pos + length].decode("utf-8", "replace"))
            pos += length
        kind = data[pos]
        pos += 1
        # Skip the import's description: a type index, table, memory or global type.
        if kind == 0:
            _, pos = leb128(data, pos)
        elif kind == 1:
            pos += 1
            flags, pos = leb128(data, pos)
            _, pos = leb128(data, pos)
            if flags & 1:
                _, pos = leb128(data, pos)
        elif kind == 2:
            flags, pos = leb128(data, pos)
            _, pos = leb128(data, pos)
            if flags & 1:
                _, pos = leb128(data, pos)
        elif kind == 3:
            pos += 2
        found.append(".".join(parts))
    return found


def main(path):
    data = open(path, "rb").read()
    if data[:4] != b"\0asm":
        sys.exit(f"{path}: not a Wasm module")
    pos = 8
    while pos < len(data):
        section, pos = data[pos], pos + 1
        size, pos = leb128(data, pos)
        if section == 2:
            count, body = leb128(data, pos)
            if count:
                sys.exit(f"{path}: imports {', '.join(names(data, body, count))}")
        pos += size
    print(f"{path}: no imports")


if __name__ == "__main__":
    main(sys.argv[1])
