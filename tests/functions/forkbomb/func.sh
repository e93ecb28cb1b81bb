#!/bin/sh
# Forks without end; the pids limit must contain it. The sleeper is forked
# before the bomb and waited for with a builtin: once the pids limit is hit,
# no further fork can succeed, and a shell that needed one after the bomb
# (a plain `wait; sleep`) exited early with "can't fork" (a 502 seen in CI)
# instead of running to its deadline.
echo "forking" >&2
sleep 3600 &
sleeper=$!
bomb() { bomb | bomb & }
bomb
wait "$sleeper"
