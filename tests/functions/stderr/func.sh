#!/bin/sh
# Writes to both streams: only stdout is the response; stderr is the call log.
echo "log line 1" >&2
cat >/dev/null
echo "the answer"
echo "log line 2" >&2
