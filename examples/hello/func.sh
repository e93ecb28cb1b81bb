#!/bin/sh
# The whole request body is on stdin; whatever goes to stdout is the response body.
body=$(cat)
name=$(printf '%s' "$body" | sed -n 's/.*"name"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | head -n 1)
echo "Hello ${name:-World}!"
