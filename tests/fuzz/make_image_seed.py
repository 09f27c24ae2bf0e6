#!/usr/bin/env python3
"""Writes seeds of the image fuzz target (image_fuzz.cc) that this build's loader accepts:
image files of the current format (BRIGIMG3, src/engine/image_file.c) whose memory is the
module's initial size, all holes but for one short run of bytes, written with the target's
placeholders (@KEY@, @KLEN, @SUM, @SKIP n) so that each seed is a few hundred bytes.

Usage: tests/fuzz/make_image_seed.py BUILD/guest/python_module_facts.h OUT_DIR
The module's facts (initial and maximum memory pages, stack pointer, table size) come from
the guest build; the digest is computed here as src/engine/page_snapshot.c computes it (a
change there must be made here too: the seeds would then be refused as damaged).
"""
import os
import re
import struct
import sys

M = (1 << 64) - 1
PAGE = 4096
MAGIC = b"BRIGIMG3"


def mix(h, v):
    h ^= (v + 0x9E3779B97F4A7C15 + ((h << 6) & M) + (h >> 2)) & M
    return (h * 0xFF51AFD7ED558CCD) & M


def hash_page(seed, page):
    a, b, c, d = seed, ~seed & M, (seed * 3) & M, seed ^ 0x5BD1E995
    words = struct.unpack("<512Q", page)
    for i in range(0, 512, 4):
        a = ((a ^ words[i]) * 0x9E3779B97F4A7C15) & M
        b = ((b ^ words[i + 1]) * 0xC2B2AE3D27D4EB4F) & M
        c = ((c ^ words[i + 2]) * 0x165667B19E3779F9) & M
        d = ((d ^ words[i + 3]) * 0x27D4EB2F165667C5) & M
    return mix(mix(mix(mix(seed, a), b), c), d)


def digest(memory_bytes, data_pages):
    """data_pages: {page index: 4096 bytes}, the rest zeros."""
    h = mix(0x62726967, memory_bytes)
    for p in sorted(data_pages):
        if any(data_pages[p]):
            h = hash_page(mix(h, p), data_pages[p])
    return h


def skip(n):
    return b"@SKIP" + struct.pack("<I", n)


def seed(facts, data_at, data, warm, random_seed, max_pages=None):
    memory_bytes = facts["MEMORY_PAGES"] * 65536
    assert data_at + len(data) <= memory_bytes and data_at // PAGE == (data_at + len(data) - 1) // PAGE
    page = data_at // PAGE
    content = bytearray(PAGE)
    content[data_at % PAGE:data_at % PAGE + len(data)] = data
    memory = skip(data_at) + data + skip(memory_bytes - data_at - len(data))
    t = MAGIC + b"@KLEN" + b"@KEY@"
    t += struct.pack("<IIIIQI", memory_bytes, max_pages or facts["MEMORY_MAX_PAGES"], facts["G0_INITIAL"],
                     facts["TABLE_SIZE"], random_seed, len(warm))
    t += b"".join(struct.pack("<II", *w) for w in warm)
    t += struct.pack("<Q", digest(memory_bytes, {page: bytes(content)})) + b"@SUM"
    return memory + t + struct.pack("<Q", memory_bytes) + MAGIC


def main():
    facts_h, out = sys.argv[1], sys.argv[2]
    facts = {}
    with open(facts_h) as f:
        for name, value in re.findall(r"#define BRIG_W2C_(\w+) (\d+)u", f.read()):
            facts[name] = int(value)
    os.makedirs(out, exist_ok=True)
    seeds = {
        # One run of bytes in the middle of the memory, a warm range around it.
        "brigimg3-loads": seed(facts, 5 << 20, b"brig image fuzz seed", [(1280, 2)], 42),
        # At the very start and with no warm pages; the memory's maximum its initial size.
        "brigimg3-loads-first-page": seed(facts, 0, bytes(range(1, 65)), [], 7, max_pages=facts["MEMORY_PAGES"]),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(name, len(data), "bytes")


if __name__ == "__main__":
    main()
