#!/usr/bin/env python3
"""Picks a few inputs that keep most of a long run's coverage, to keep a corpus under 200 files.

libFuzzer's -merge=1 keeps every input that adds a feature, often several hundred. Given the
control file of such a merge (-merge_control_file=FILE), this prints the paths of at most LIMIT
inputs chosen greedily, each adding the most features not yet covered; inputs whose path starts with
KEEP (the committed corpus) count as covered from the start and are never printed.

  build-fuzz/fuzz/csv_file_fuzzer -merge=1 -merge_control_file=/tmp/cf /tmp/empty \
      fuzz/corpus/csv_file /tmp/found
  fuzz/select_inputs.py /tmp/cf 150 fuzz/corpus/ | xargs -I{} cp {} fuzz/corpus/csv_file/
"""
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    control, limit, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    lines = open(control).read().split("\n")
    count = int(lines[0])
    paths = lines[2:2 + count]
    features = {}
    for line in lines[2 + count:]:
        fields = line.split()
        if fields and fields[0] == "FT":
            features[int(fields[1])] = set(fields[2:])
    covered = set()
    for i in list(features):
        if paths[i].startswith(keep):
            covered |= features.pop(i)
    everything = covered.union(*features.values())
    chosen = []
    while features and len(chosen) < limit:
        best = max(features, key=lambda i: len(features[i] - covered))
        if not features[best] - covered:
            break
        covered |= features.pop(best)
        chosen.append(paths[best])
    print(f"{len(chosen)} inputs; {len(covered)} of {len(everything)} features covered",
          file=sys.stderr)
    print("\n".join(chosen))


if __name__ == "__main__":
    main()
