#!/usr/bin/env python3
"""Cut a generated incident corpus into many small evidence files, for the small-files benchmark.

Reads the JSON-lines logs that bench/make-incident-corpus.py wrote under SRC and
writes N files of 1-4 KiB each (whole lines, sizes drawn with a fixed seed) under
OUT/memory/<2 hex digits>/, so the result is a realistic incident directory made of small
memory records. Deterministic for the same SRC, N and seed.

usage: make-small-files.py SRC OUT [--files N] [--seed S]
"""
import argparse, os, random


def lines(src):
    for sub in ("logs", "policy", "egress", "approvals", "traces"):
        d = os.path.join(src, sub)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                for line in f:
                    yield line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=157)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    it = lines(a.src)
    for k in range(256):
        os.makedirs(os.path.join(a.out, "memory", "%02x" % k), exist_ok=True)
    total = 0
    for i in range(a.files):
        want = rng.randint(1024, 4096)
        buf = bytearray()
        while len(buf) < want:
            line = next(it, None)
            if line is None:
                raise SystemExit("source corpus too small for %d files" % a.files)
            buf += line[: want - len(buf)] if len(buf) + len(line) > 4096 else line
        with open(os.path.join(a.out, "memory", "%02x" % (i % 256), "rec-%06d.jsonl" % i), "wb") as f:
            f.write(buf)
        total += len(buf)
    print("%d files, %d bytes" % (a.files, total))


if __name__ == "__main__":
    main()
