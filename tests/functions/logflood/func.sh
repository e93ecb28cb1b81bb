#!/bin/sh
# Floods stderr (its log) without end, then would answer: only the deadline stops it.
echo "flooding the log" >&2
exec yes "log flood log flood log flood log flood log flood log flood" >&2
