#!/bin/sh
# skua worker entrypoint: turns the SR-IOV VFs the pod was given into DPDK's
# EAL PCI allow-list (-a ADDR ...), then execs skua. POSIX sh.
#
# The first source that yields addresses wins:
#   1. SKUA_ALLOW_LIST (worker.dpdk.allowList), comma- or space-separated;
#   2. PCIDEVICE_<RESOURCE>, set by the SR-IOV network device plugin for the
#      resource SKUA_SRIOV_RESOURCE (intel.com/intel_sriov_dpdk →
#      PCIDEVICE_INTEL_COM_INTEL_SRIOV_DPDK);
#   3. any other PCIDEVICE_* variable;
#   4. Multus' k8s.v1.cni.cncf.io/network-status annotation (device-info
#      pci-address), read from the downward-API file SKUA_PODINFO_ANNOTATIONS.
# The EAL core list is not set here: skua takes it from the pod's cpuset.
set -eu

log() { echo "skua-entrypoint: $*" >&2; }

PCI_RE='[0-9a-fA-F]\{4\}:[0-9a-fA-F]\{2\}:[0-9a-fA-F]\{2\}\.[0-7]'
addrs=""
from=""

if [ -n "${SKUA_ALLOW_LIST:-}" ]; then
    addrs=$(echo "$SKUA_ALLOW_LIST" | tr ',' ' ')
    from="worker.dpdk.allowList"
fi
if [ -z "$addrs" ] && [ -n "${SKUA_SRIOV_RESOURCE:-}" ]; then
    var="PCIDEVICE_$(echo "$SKUA_SRIOV_RESOURCE" | tr 'a-z./-' 'A-Z___' | tr -cd 'A-Z0-9_')"
    eval "val=\${$var:-}"
    if [ -n "$val" ]; then
        addrs=$(echo "$val" | tr ',' ' ')
        from="$var"
    fi
fi
if [ -z "$addrs" ]; then
    val=$(env | grep '^PCIDEVICE_' | cut -d= -f2- | tr ',\n' '  ' || true)
    if [ -n "$(echo "$val" | tr -d ' ')" ]; then
        addrs=$val
        from="PCIDEVICE_*"
    fi
fi
annotations=${SKUA_PODINFO_ANNOTATIONS:-/etc/podinfo/annotations}
if [ -z "$addrs" ] && [ -r "$annotations" ]; then
    val=$(grep '^k8s.v1.cni.cncf.io/network-status=' "$annotations" \
        | grep -o "pci-address[^0-9a-fA-F]*$PCI_RE" | grep -o "$PCI_RE" | tr '\n' ' ' || true)
    if [ -n "$val" ]; then
        addrs=$val
        from="network-status annotation"
    fi
fi

eal=""
seen=" "
for a in $addrs; do
    if ! echo "$a" | grep -q "^$PCI_RE\$"; then
        log "ignoring '$a' from $from: not a PCI address (dddd:bb:dd.f)"
        continue
    fi
    case "$seen" in *" $a "*) continue ;; esac
    seen="$seen$a "
    eal="$eal -a $a"
done
eal="${eal# }"
extra=${SKUA_EAL_EXTRA:-}

if [ -z "$eal" ]; then
    case "$extra" in
    *--vdev*) log "no VF; EAL devices from worker.dpdk.extraEalArgs only" ;;
    *)
        log "no VF to capture from: no PCIDEVICE_* variable (resource ${SKUA_SRIOV_RESOURCE:-none}) and no pci-address in the network-status annotation."
        log "fix: request the VF (sriov.enabled, sriov.resourceName) or set worker.dpdk.allowList"
        exit 1
        ;;
    esac
else
    log "EAL allow-list from $from:$(echo " $eal" | sed 's/ -a / /g')"
fi

eal=$(echo "$eal $extra" | sed 's/^ *//; s/ *$//')
exec "${SKUA_BIN:-skua}" "${SKUA_SUBCOMMAND:-worker}" --config "${SKUA_CONFIG:-/etc/skua/skua.yaml}" --dpdk "$eal"
