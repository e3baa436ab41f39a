#!/bin/bash
# PID 1 of the guest once init has switched to this machine's root: runs the command that
# run.sh wrote, leaves its exit status for run.sh, and powers off. The command runs as a child
# so that this bash, as PID 1, reaps the orphans a test leaves (a zombie would look alive).
echo booted >/run/snigate-vm/booted
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
stty -onlcr 2>/dev/null  # the serial console would turn every \n into \r\n on the host
ip link set lo up
dmesg -n 5  # from here on the kernel's warnings (a WARN splat, say) reach the console
# Through a pipe, as on the host: a console is a terminal, and CTest and GoogleTest would colour
# their output, summary line included, for it.
bash /run/snigate-vm/command 2>&1 | cat
echo "${PIPESTATUS[0]}" >/run/snigate-vm/status
sync
echo o >/proc/sysrq-trigger
sleep 10
