#!/usr/bin/env bash
# Installs what building and testing need on a bare Debian/Ubuntu machine:
# OpenSSH's server (tests start their own sshd on 127.0.0.1), rsync (benchmarks), sudo (the `sudo` option),
# git, zstd (the cache store), perl (recipe evaluation); then the npm packages.
# Install scripts are skipped: ssh2's native add-ons are optional and the bundle never ships them.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for pair in sshd:openssh-server rsync:rsync sudo:sudo git:git zstd:zstd perl:perl ssh-keygen:openssh-client; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; else SUDO=; fi
  echo "installing: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
npm ci --ignore-scripts --no-audit --no-fund
