#!/bin/bash
# Make the root file system of a "fresh machine" of this project's kind (root, once; about 5 minutes):
# Debian 12 with the packages a newly provisioned machine has (the workplace's package list, less what only
# a vendor's repository has), plus the provisioning's CA certificates, pip and apt settings. machine.sh
# enters it. Nothing of the project is in it: no accounts, no Debian packages of ./lab's, no cgroups.
#   make-rootfs.sh [PACKAGE_LIST]      (default: /work/.library/env/packages/installed-python.txt)
set -euo pipefail
FRESH=${FRESH:-/srv/fresh}
LIST=${1:-/work/.library/env/packages/installed-python.txt}
mkdir -p "$FRESH"
pkgs=()
while read -r p; do
  apt-cache show "$p" >/dev/null 2>&1 && pkgs+=("$p")
done < <(awk -F'\t' '$1=="apt"{print $2}' "$LIST")
echo "${#pkgs[@]} Debian packages of $(awk -F'\t' '$1=="apt"' "$LIST" | wc -l) in the list are in Debian 12"
R="$FRESH/rootfs"
rm -rf "$R"
mmdebstrap --variant=apt --include="$(IFS=,; echo "${pkgs[*]}")" bookworm "$R" \
  "deb http://deb.debian.org/debian bookworm main" "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" > "$FRESH/mmdebstrap.log" 2>&1
# What the provisioning adds beside packages (a TLS-inspecting egress, local wheels, an apt mirror's rules).
cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/" 2>/dev/null || true
chroot "$R" update-ca-certificates >/dev/null
[ -e /etc/pip.conf ] && cp /etc/pip.conf "$R/etc/pip.conf"
[ -e /root/.config/pip/pip.conf ] && mkdir -p "$R/root/.config/pip" && cp /root/.config/pip/pip.conf "$R/root/.config/pip/"
for f in /etc/apt/apt.conf.d/99*; do [ -e "$f" ] && cp "$f" "$R/etc/apt/apt.conf.d/"; done
mkdir -p "$R/opt/wheels" "$R/opt/pypi" "$R/opt/pypi-more"
tar -C "$R" -cf "$FRESH/rootfs.pristine.tar" .
echo "made $R ($(du -sh "$R" | cut -f1)); machine.sh --reset restores it from $FRESH/rootfs.pristine.tar"
