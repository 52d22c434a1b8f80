# Scenario 24 (issue 13), layout laptop, 2 vCPUs, `gpuhook hook` by hand (no systemd). Proves:
#   huge pages: a domain with <hugepages/> and 64 MiB gets 32 pages of 2 MiB: with 2 free pages
#   reserved before, nr_hugepages goes 2 -> 32 in prepare (32 free for the VM) and back to 2 in
#   release (the previous count, not zero); a domain of 4 GiB (the guest has 1.5 GiB) is refused
#   with the numbers (wanted, got, MemFree) and the count stays 2;
#   CPU isolation through the cgroup v2 cpuset (no systemd): the domain pins CPU 1; a test
#   process in a top-level cgroup (what the harness adds: cpuset enabled in the root's
#   subtree_control, group /sys/fs/cgroup/rkhost) is confined to CPU 0 while the VM runs and has
#   CPUs 0-1 again after release (its cpuset.cpus, empty before, then names the parent's CPUs:
#   this kernel refuses to empty the cpuset of a group with processes);
#   the Looking Glass file of [tuning] shared_memory: created with its size, owner and mode, and
#   removed after.
. "$RK_DIR/lib.sh"
HP=/sys/kernel/mm/hugepages/hugepages-2048kB
[ -d $HP ] || rk_fail "the guest kernel has no 2 MiB huge pages ($HP)"
check "guest CPUs" 0-1 "$(cat /sys/devices/system/cpu/online)"
getent group kvm >/dev/null || groupadd -r kvm
useradd -M -d /nonexistent -u 1500 -U lguser || rk_fail "useradd lguser"
echo 2 > $HP/nr_hugepages
check "huge pages reserved before" 2 "$(cat $HP/nr_hugepages)"
echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control || rk_fail "cannot enable cpuset in cgroup v2"
mkdir -p /sys/fs/cgroup/rkhost
sleep 600 &
HOSTPROC=$!
echo $HOSTPROC > /sys/fs/cgroup/rkhost/cgroup.procs || rk_fail "cannot move the test process into rkhost"
allowed() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$HOSTPROC/status; }
check "test process CPUs before" 0-1 "$(allowed)"
write_profile win <<EOT
[gpu]
address = "$DGPU"
[display.looking_glass]
client = ["/bin/true"]
user = "lguser"
[tuning]
hugepages = true
isolate_cpus = true
shared_memory = true
EOT
xml() {
  echo "<domain type='kvm'><name>win</name><memory unit='KiB'>$1</memory><memoryBacking><hugepages/></memoryBacking>
<cputune><vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='1'/></cputune><devices>
<shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>32</size></shmem></devices></domain>"
}
snapshot > "$RK_STATE/before"
gh win prepare begin <<< "$(xml 65536)"
check "prepare exit status" 0 "$GH_RC"
check "huge pages while the VM runs" 32 "$(cat $HP/nr_hugepages)"
check "free huge pages while the VM runs" 32 "$(cat $HP/free_hugepages)"
check "rkhost cpuset.cpus while the VM runs" 0 "$(cat /sys/fs/cgroup/rkhost/cpuset.cpus)"
check "test process CPUs while the VM runs" 0 "$(allowed)"
check "shared memory: size owner group mode" "33554432 lguser kvm 660" "$(stat -c '%s %U %G %a' /dev/shm/looking-glass 2>&1)"
check_has "log: the reservation step" "reserve 32 huge pages of 2048 KiB" "$(log_lines "step ")"
gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
check "huge pages after release (the previous count)" 2 "$(cat $HP/nr_hugepages)"
# It was empty (the parent's CPUs); the kernel refuses to empty the cpuset of a group with
# processes (ENOSPC), so release names the parent's CPUs: the same CPUs.
check "rkhost cpuset.cpus after release (the parent's CPUs by name)" "$(cat /sys/fs/cgroup/cpuset.cpus.effective)" "$(cat /sys/fs/cgroup/rkhost/cpuset.cpus)"
check "test process CPUs after release" 0-1 "$(allowed)"
check "shared memory after release" absent "$([ -e /dev/shm/looking-glass ] && echo present || echo absent)"
check "journal after release" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"

say "-- a domain of 4 GiB on a 1.5 GiB guest"
gh win prepare begin <<< "$(xml 4194304)"
check "prepare refused" 1 "$GH_RC"
check_has "refusal gives the numbers" "wanted 2048 pages of 2048 KiB (4096 MiB), the kernel reserved" "$GH_ERR"
check_has "log: the free memory and what to do" "MemFree" "$(log_lines "")"
check_has "log: reserve at boot" "hugepagesz=2M hugepages=2050" "$(log_lines "")"
check "huge pages after the refusal (unchanged)" 2 "$(cat $HP/nr_hugepages)"
check "test process CPUs after the refusal" 0-1 "$(allowed)"
gh win release end < /dev/null
check "journal after the refused start's release" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before == after" "$RK_STATE/before" "$RK_STATE/after"
kill $HOSTPROC 2>/dev/null
