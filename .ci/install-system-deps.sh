#!/usr/bin/env bash
# Installs the system software dubito's tests need on a Debian 12 machine without a GPU:
# Mesa's lavapipe (software Vulkan) from bookworm-backports, so that Dawn (the `webgpu` npm
# package) finds a WebGPU adapter, and Debian's Chromium for the real-browser test.
# Idempotent: skips what is already there. Must run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need_update=1
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || ! dpkg -s libvulkan1 >/dev/null 2>&1 \
   || ! dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '~bpo12'; then
  if [ ! -f /etc/apt/sources.list.d/backports.list ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    echo "deb $uri bookworm-backports main" > /etc/apt/sources.list.d/backports.list
  fi
  apt-get update -qq; need_update=0
  apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
fi
if ! command -v chromium >/dev/null 2>&1; then
  [ "$need_update" = 1 ] && apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
echo "system deps: lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), $(chromium --version 2>/dev/null)"
