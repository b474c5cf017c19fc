#!/bin/sh
# Runs pytest (the arguments are pytest's) with its temporary files in memory where the
# machine has room: under /dev/shm when it has at least 4 GiB free (a run writes ~0.8 GB:
# demo exports, DuckDB files, PDFs), else where pytest puts them by default. On disk, every
# DuckDB checkpoint and every atomically written output waits for its fsync: ~5 s of the run's
# wall time on a 2-core machine. The folder is removed after a run that passed and kept, with
# its path printed, after one that failed.
set -u
free_kib=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -ge 4194304 ] && tmp=$(mktemp -d /dev/shm/outcomes-tests.XXXXXX); then
    "$@" --basetemp="$tmp/run"
    status=$?
    if [ "$status" -eq 0 ]; then
        rm -rf "$tmp"
    else
        echo "The tests' temporary files are kept in $tmp (in memory: rm -rf it when done)." >&2
    fi
    exit "$status"
fi
exec "$@"
