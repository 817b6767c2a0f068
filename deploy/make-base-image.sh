#!/usr/bin/env bash
# Creates the local base image localhost/wavepool-base:bookworm that
# deploy/Dockerfile builds FROM. No image registry is reachable from our
# machines, so the image is made from a Debian bookworm minbase tree
# (debootstrap from deb.debian.org, which is reachable) and `podman import`.
#
# Idempotent: does nothing when the image already exists. The root filesystem
# tarball is cached: a rerun after `podman rmi` takes about a second instead
# of a fresh debootstrap (half a minute on a fast mirror, minutes on a slow one).
#
# Environment (all optional):
#   WAVEPOOL_BASE_CACHE  cache directory         (default /var/tmp/wavepool-base)
#   WAVEPOOL_BASE_IMAGE  image name              (default localhost/wavepool-base:bookworm)
#   WAVEPOOL_MIRROR      Debian mirror           (default http://deb.debian.org/debian)
#   WAVEPOOL_BASE_REBUILD=1  debootstrap again and replace the image
# Needs root (debootstrap), debootstrap and podman: apt-get install debootstrap podman runc
set -euo pipefail

CACHE=${WAVEPOOL_BASE_CACHE:-/var/tmp/wavepool-base}
IMAGE=${WAVEPOOL_BASE_IMAGE:-localhost/wavepool-base:bookworm}
MIRROR=${WAVEPOOL_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${WAVEPOOL_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
REBUILD=${WAVEPOOL_BASE_REBUILD:-0}
SUITE=bookworm
TARBALL="$CACHE/$SUITE-minbase.tar"

die() { echo "make-base-image: $*" >&2; exit 1; }
log() { echo "make-base-image: $*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap needs it)"
command -v podman >/dev/null || die "podman not found: apt-get install podman runc"

if [ "$REBUILD" != 1 ] && podman image exists "$IMAGE"; then
  log "$IMAGE already exists; nothing to do (WAVEPOOL_BASE_REBUILD=1 to redo)"
  exit 0
fi

mkdir -p "$CACHE"
# One builder at a time: two test runs started together must not debootstrap
# into the same directory.
exec 9>"$CACHE/.lock"
flock 9

# Writes the files that make the tree a usable container base.
configure_rootfs() {
  local root=$1
  # apt sources: the build stage runs scripts/deps.sh (apt-get install) and the
  # runtime stage installs the shared libraries, both with these sources.
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  # Containers have no init: package scripts must not try to start services.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  # Keep images small: no package caches after install, no man pages, docs or
  # translations (copyright files stay, for licence compliance).
  cat >"$root/etc/apt/apt.conf.d/90wavepool-container" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/90wavepool-excludes" <<'EOF'
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
EOF
  # Host-specific files debootstrap copied in; the container runtime supplies them.
  rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
  : >"$root/etc/resolv.conf"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
}

if [ "$REBUILD" = 1 ] || [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
  rootfs="$CACHE/rootfs.tmp"
  rm -rf "$rootfs" "$TARBALL.tmp"
  log "debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes)"
  if ! debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE/debootstrap.log" >&2
    die "debootstrap failed; full log in $CACHE/debootstrap.log"
  fi
  configure_rootfs "$rootfs"
  tar -C "$rootfs" --numeric-owner -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"   # atomic: a half-written tarball is never reused
  rm -rf "$rootfs"
  log "cached $TARBALL ($(du -h "$TARBALL" | cut -f1))"
else
  log "using cached $TARBALL"
fi

# podman import sets no environment; without PATH some tools in RUN steps break.
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase $SUITE $MIRROR" \
  - "$IMAGE" <"$TARBALL" >/dev/null
log "created $IMAGE"
