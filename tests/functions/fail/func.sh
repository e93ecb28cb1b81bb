#!/bin/sh
# Fails: a line on stderr, a partial answer on stdout, exit status 3.
echo "partial output"
echo "boom: something went wrong" >&2
exit 3
