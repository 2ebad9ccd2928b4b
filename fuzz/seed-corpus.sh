#!/bin/sh
# Seeds the `parse` fuzz corpus (corpus/parse, git-ignored) with every script of the AIR
# corpus in ../../shared/corpus/air (the `shared` folder beside the repository root).
# Files are named <repository>__<file>.air, so existing and libFuzzer-made entries stay.
set -eu
cd "$(dirname "$0")"
src=../../shared/corpus/air
dst=corpus/parse
mkdir -p "$dst"
n=0
for f in "$src"/*/*.air; do
    repo=$(basename "$(dirname "$f")")
    cp "$f" "$dst/${repo}__$(basename "$f")"
    n=$((n + 1))
done
echo "seeded $dst with $n scripts"
