#!/bin/bash
# Lab self-test: `vm run` exits with SCRIPT's status, and returns even when
# SCRIPT leaves a background process holding its stdout.
sleep 3600 &
echo "exiting with 7"
exit 7
