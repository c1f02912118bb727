#!/usr/bin/env bash
# Builds skua's container image without a registry or a Docker engine, the
# image deploy/Containerfile describes: a minimal Debian 12 root made by
# debootstrap, DPDK's runtime libraries (runtime-packages.txt), the skua
# binary, committed by buildah. Then checks it: `skua --version` and one
# pass of the bundled demo inside the image (buildah run, chroot isolation),
# and a DPDK vdev run that loads the image's poll-mode drivers.
#
#   deploy/image/build.sh [--binary PATH] [--tag NAME:TAG] [--root DIR]
#
# Defaults: the release binary of $CARGO_TARGET_DIR (built if missing), the
# tag skua:<chart appVersion> that the Helm chart's default image names,
# and /var/tmp/skua-image-root as the debootstrap cache. Needs root,
# debootstrap and buildah (Debian packages). To push it:
#   buildah push skua:0.1.0 docker://registry.example.com/skua:0.1.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
version=$(awk -F'"' '/^appVersion:/ {print $2}' "$repo/deploy/helm/skua/Chart.yaml")
binary=$target/release/skua
tag=skua:$version
root=/var/tmp/skua-image-root
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --root) root=$2; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--tag NAME:TAG] [--root DIR]" >&2; exit 2 ;;
    esac
done

crate_version=$(awk -F'"' '/^\[workspace.package\]/ {w=1} w && /^version/ {print $2; exit}' "$repo/Cargo.toml")
if [ "$crate_version" != "$version" ]; then
    echo "the chart's appVersion ($version) is not skua's version ($crate_version)" >&2
    exit 1
fi
if [ ! -x "$binary" ]; then
    (cd "$repo" && cargo build --release -q -p controlplane --bin skua)
fi

packages=$(grep -v '^#' "$here/runtime-packages.txt" | paste -sd, -)
stamp="$root/.skua-packages"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$packages" ]; then
    echo "== debootstrap a minimal Debian 12 root with: $packages"
    rm -rf "$root"
    debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >/dev/null
    # What an image does not need: package lists, docs, man pages, caches.
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/locale/* "$root"/var/cache/debconf/*-old "$root"/var/log/*
    echo "$packages" > "$stamp"
fi

echo "== buildah: $tag from the root and $binary"
# The image's copy keeps its symbols (backtraces name functions) but not
# the line tables, as deploy/Containerfile does.
stripped=$(mktemp /tmp/skua-image-bin.XXXXXX)
objcopy --strip-debug "$binary" "$stripped"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; rm -f "$stripped"' EXIT
buildah add --quiet "$ctr" "$root" / >/dev/null
buildah run --isolation chroot "$ctr" -- rm -f /.skua-packages
buildah copy --quiet --chmod 0755 "$ctr" "$stripped" /usr/local/bin/skua >/dev/null
buildah config \
    --entrypoint '["/usr/local/bin/skua"]' --cmd '["run"]' \
    --env SKUA_LOG=info --workingdir / \
    --label org.opencontainers.image.title=skua \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.description="DPDK packet capture with JavaScript network agents" \
    "$ctr"
buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
trap - EXIT
rm -f "$stripped"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$tag"

echo "== the image runs skua"
check=$(buildah from "$tag")
trap 'buildah rm "$check" >/dev/null 2>&1 || true' EXIT
run() { buildah run --isolation chroot "$check" -- "$@"; }
run /usr/local/bin/skua --version
summary=$(run /usr/local/bin/skua run --loop 1 --quiet --summary json \
    --set hub.listen= --set integrations.metrics_listen=)
echo "$summary" | python3 -c 'import json,sys; s=json.load(sys.stdin); t=s["total"]; assert t["packets"] > 0 and t["items"] > 0, s; print("demo:", t["packets"], "packets,", t["items"], "items")'
# DPDK from the image's own libraries: the null vdev, no hugepages.
run /usr/local/bin/skua run --dpdk '--no-pci --no-huge --vdev net_null0' --duration 1 \
    --quiet --summary json --set hub.listen= --set integrations.metrics_listen= \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["sources"][0].startswith("dpdk:net_null0"), s; print("dpdk:", s["sources"][0], s["total"]["packets"], "packets")'
echo "== $tag built and checked"
