#!/bin/sh
# Echoes the request body back.
exec cat
