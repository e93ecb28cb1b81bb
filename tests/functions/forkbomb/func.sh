#!/bin/sh
# Forks without end; the pids limit must contain it.
echo "forking" >&2
bomb() { bomb | bomb & }
bomb
wait
sleep 3600
