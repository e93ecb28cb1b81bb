#!/bin/sh
# Floods stdout without end.
exec yes "flood flood flood flood flood flood flood flood"
