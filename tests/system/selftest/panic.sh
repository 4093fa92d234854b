#!/bin/bash
# Lab self-test: crash the guest kernel.
echo "crashing the kernel"
echo 1 >/proc/sys/kernel/sysrq
echo c >/proc/sysrq-trigger
sleep 60
