#!/usr/bin/env bash
# Prepares a bare-metal capture node for skua, idempotently (run it at boot:
# skua-worker.service runs it as ExecStartPre):
#   1. checks the IOMMU is on (vfio-pci needs it);
#   2. reserves hugepages per NUMA node and mounts hugetlbfs;
#   3. creates SR-IOV VFs on the capture port (optional) and binds the VFs
#      (or any PCI devices named) to vfio-pci with dpdk-devbind.py.
#
# Settings come from /etc/default/skua-node (or the environment), flags win:
#   SKUA_HUGEPAGES=512        pages per node                 --pages N
#   SKUA_HUGEPAGE_SIZE=2M     2M or 1G                       --size S
#   SKUA_HUGEPAGE_NODE=       one node only (default: every) --node N
#   SKUA_HUGEPAGE_MOUNT=/dev/hugepages                       --mount DIR
#   SKUA_PF=                  capture port to carve VFs from --pf IFACE
#   SKUA_NUM_VFS=0            VFs to create on SKUA_PF       --num-vfs N
#   SKUA_DEVICES=             PCI addresses to bind          --device ADDR (repeatable)
#   --check                   change nothing: report what is missing, exit 1 if anything is
#
# With `skua` on PATH the hugepage steps use `skua hugepages reserve|mount`
# (same errors, same fixes as the worker's preflight); without it, sysfs.
set -euo pipefail

CONF=${SKUA_NODE_CONF:-/etc/default/skua-node}
# shellcheck disable=SC1090
[ -r "$CONF" ] && . "$CONF"

PAGES=${SKUA_HUGEPAGES:-512}
SIZE=${SKUA_HUGEPAGE_SIZE:-2M}
NODE=${SKUA_HUGEPAGE_NODE:-}
MOUNT=${SKUA_HUGEPAGE_MOUNT:-/dev/hugepages}
PF=${SKUA_PF:-}
NUM_VFS=${SKUA_NUM_VFS:-0}
read -r -a DEVICES <<< "${SKUA_DEVICES:-}"
CHECK=0

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
    --pages) PAGES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --node) NODE=$2; shift 2 ;;
    --mount) MOUNT=$2; shift 2 ;;
    --pf) PF=$2; shift 2 ;;
    --num-vfs) NUM_VFS=$2; shift 2 ;;
    --device) DEVICES+=("$2"); shift 2 ;;
    --check) CHECK=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "node-setup: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done

case "$SIZE" in
2M | 2m) SIZE=2M; KB=2048 ;;
1G | 1g) SIZE=1G; KB=1048576 ;;
*) echo "node-setup: --size must be 2M or 1G, not $SIZE" >&2; exit 2 ;;
esac

missing=0
say() { echo "node-setup: $*"; }
problem() { echo "node-setup: MISSING: $*" >&2; missing=1; }

# 1. IOMMU: vfio-pci refuses devices without an IOMMU group.
if [ -n "$(ls -A /sys/kernel/iommu_groups 2>/dev/null)" ]; then
    say "IOMMU on ($(ls /sys/kernel/iommu_groups | wc -l) groups)"
else
    problem "no IOMMU groups: enable VT-d/AMD-Vi in the firmware and add 'intel_iommu=on iommu=pt' (Intel) or 'amd_iommu=on iommu=pt' (AMD) to the kernel command line (deploy/RUNBOOK.md)"
fi
grep -qw 'iommu=pt' /proc/cmdline || say "note: 'iommu=pt' is not on the kernel command line (host devices pay for IOMMU translation)"

# 2. Hugepages.
nodes() {
    if [ -n "$NODE" ]; then echo "$NODE"; return; fi
    if ls -d /sys/devices/system/node/node[0-9]* >/dev/null 2>&1; then
        for d in /sys/devices/system/node/node[0-9]*; do echo "${d##*node}"; done
    fi
}
pool_file() { # node → nr_hugepages path
    if [ -d /sys/devices/system/node/node0 ]; then
        echo "/sys/devices/system/node/node$1/hugepages/hugepages-${KB}kB/nr_hugepages"
    else
        echo "/sys/kernel/mm/hugepages/hugepages-${KB}kB/nr_hugepages"
    fi
}
ns=$(nodes)
[ -n "$ns" ] || ns=0
for n in $ns; do
    f=$(pool_file "$n")
    if [ ! -e "$f" ]; then
        problem "no $SIZE hugepage pool on node $n ($f): for 1G pages boot with 'hugepagesz=1G' on a CPU with pdpe1gb"
        continue
    fi
    have=$(cat "$f")
    if [ "$have" -ge "$PAGES" ]; then
        say "node $n: $have × $SIZE hugepages (want $PAGES)"
    elif [ "$CHECK" = 1 ]; then
        problem "node $n has $have × $SIZE hugepages, wants $PAGES: skua hugepages reserve --node $n --size $SIZE --pages $PAGES"
    elif command -v skua >/dev/null 2>&1; then
        if [ -d /sys/devices/system/node/node0 ]; then
            skua hugepages reserve --node "$n" --size "$SIZE" --pages "$PAGES"
        else
            skua hugepages reserve --size "$SIZE" --pages "$PAGES"
        fi
    else
        echo "$PAGES" > "$f"
        got=$(cat "$f")
        [ "$got" -ge "$PAGES" ] || problem "node $n: the kernel gave $got of $PAGES × $SIZE pages (memory too fragmented: reserve at boot with hugepages=$PAGES)"
        say "node $n: $got × $SIZE hugepages"
    fi
done
if grep -qs " $MOUNT hugetlbfs " /proc/mounts; then
    say "hugetlbfs mounted on $MOUNT"
elif [ "$CHECK" = 1 ]; then
    problem "no hugetlbfs on $MOUNT: skua hugepages mount --path $MOUNT --size $SIZE"
elif command -v skua >/dev/null 2>&1; then
    skua hugepages mount --path "$MOUNT" --size "$SIZE"
else
    mkdir -p "$MOUNT"
    mount -t hugetlbfs -o "pagesize=$SIZE" nodev "$MOUNT"
    say "mounted hugetlbfs ($SIZE) on $MOUNT"
fi

# 3. SR-IOV VFs on the capture port, and vfio-pci binding.
if [ -n "$PF" ] && [ "$NUM_VFS" -gt 0 ]; then
    dev=/sys/class/net/$PF/device
    if [ ! -e "$dev/sriov_totalvfs" ]; then
        problem "$PF has no SR-IOV (no $dev/sriov_totalvfs): enable SR-IOV in the firmware/NIC settings"
    else
        cur=$(cat "$dev/sriov_numvfs")
        if [ "$cur" != "$NUM_VFS" ]; then
            if [ "$CHECK" = 1 ]; then
                problem "$PF has $cur VFs, wants $NUM_VFS"
            else
                # The count can only change from 0.
                [ "$cur" = 0 ] || echo 0 > "$dev/sriov_numvfs"
                echo "$NUM_VFS" > "$dev/sriov_numvfs"
                say "$PF: $NUM_VFS VFs"
            fi
        fi
        for ((i = 0; i < NUM_VFS; i++)); do
            [ -e "$dev/virtfn$i" ] || continue
            DEVICES+=("$(basename "$(readlink -f "$dev/virtfn$i")")")
            # A capture VF must see frames not addressed to it.
            [ "$CHECK" = 1 ] || ip link set "$PF" vf "$i" trust on spoofchk off 2>/dev/null || true
        done
    fi
fi
if [ "${#DEVICES[@]}" -gt 0 ]; then
    if ! command -v dpdk-devbind.py >/dev/null 2>&1; then
        problem "dpdk-devbind.py not found: apt-get install dpdk"
    else
        [ "$CHECK" = 1 ] || modprobe vfio-pci
        for d in "${DEVICES[@]}"; do
            drv=$(basename "$(readlink -f "/sys/bus/pci/devices/$d/driver" 2>/dev/null)" 2>/dev/null || true)
            if [ "$drv" = vfio-pci ]; then
                say "$d bound to vfio-pci"
            elif [ "$CHECK" = 1 ]; then
                problem "$d is bound to '${drv:-nothing}', not vfio-pci: dpdk-devbind.py --bind=vfio-pci $d"
            else
                dpdk-devbind.py --bind=vfio-pci "$d"
                say "$d bound to vfio-pci (was ${drv:-unbound})"
            fi
        done
        say "EAL allow-list: $(printf -- '-a %s ' "${DEVICES[@]}")"
    fi
fi

if [ "$missing" = 1 ]; then
    exit 1
fi
say "node ready"
