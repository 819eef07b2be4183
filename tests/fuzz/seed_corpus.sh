#!/bin/sh
# Copy the configuration seeds into the libFuzzer corpus directories
# (tests/fuzz/corpus/<target>/, gitignored). Run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data="$here/../data"
for target in config_lexer config_load; do
    mkdir -p "$here/corpus/$target"
    for f in "$data"/seeds/*.conf "$data"/broken/*.conf; do
        [ -e "$f" ] || continue
        cp "$f" "$here/corpus/$target/$(basename "$(dirname "$f")")_$(basename "$f")"
    done
done
echo "seeded: $(ls "$here/corpus/config_load" | wc -l) files per target"
