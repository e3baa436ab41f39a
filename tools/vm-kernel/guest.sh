#!/bin/bash
# PID 1 of the guest once init has switched to this machine's root: runs the command that
# run.sh wrote, leaves its exit status for run.sh, and powers off. The command runs as a child
# so that this bash, as PID 1, reaps the orphans a test leaves (a zombie would look alive).
echo booted >/run/snigate-vm/booted
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
stty -onlcr 2>/dev/null  # the serial console would turn every \n into \r\n on the host
ip link set lo up
dmesg -n 5  # from here on the kernel's warnings (a WARN splat, say) reach the console
bash /run/snigate-vm/command
echo $? >/run/snigate-vm/status
sync
echo o >/proc/sysrq-trigger
sleep 10
