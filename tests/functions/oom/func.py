# Allocates (and touches) memory until the container's limit kills it.
import sys

chunks = []
while True:
    chunks.append(b"x" * (8 << 20))
    sys.stderr.write(f"allocated {len(chunks) * 8} MiB\n")
