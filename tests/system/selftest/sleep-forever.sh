#!/bin/bash
# Lab self-test: a SCRIPT that never ends (for --timeout).
echo "sleeping forever"
while :; do sleep 60; done
