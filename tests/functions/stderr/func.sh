#!/bin/sh
# Writes to both streams: only stdout is the response; stderr is the call log (with the
# route's config NOTE, when it has one: the dashboard's tests put markup in it).
echo "log line 1" >&2
cat >/dev/null
echo "the answer"
echo "log line 2" >&2
[ -z "$NOTE" ] || echo "$NOTE" >&2
