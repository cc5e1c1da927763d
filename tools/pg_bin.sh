#!/bin/sh
# Print the directory holding PostgreSQL's server programs (initdb, pg_ctl, postgres); exit 1 when there is none.
# Looks in `pg_config --bindir`, then beside the pg_ctl on PATH, then in Debian's /usr/lib/postgresql/<major>/bin
# (highest major first), so neither the Makefile nor the tests hard-code a major version.
has_server() { [ -n "$1" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]; }

on_path=$(command -v pg_ctl) && on_path=$(dirname "$(readlink -f "$on_path")")
for dir in "$(pg_config --bindir 2>/dev/null)" "$on_path" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    if has_server "$dir"; then
        echo "$dir"
        exit 0
    fi
done
exit 1
