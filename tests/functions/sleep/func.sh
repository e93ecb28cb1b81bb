#!/bin/sh
# Hangs well past any timeout (a shell as PID 1 ignores SIGTERM, so only a kill ends it).
echo "going to sleep" >&2
sleep 3600
