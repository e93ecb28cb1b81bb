#!/bin/sh
# Prints its environment and its user, so tests can check what the executor set.
env
echo "ID=$(id -u):$(id -g)"
