#!/bin/bash
# A "fresh machine" on this host: the Debian 12 root filesystem make-rootfs.sh made from the package list of a
# newly provisioned machine of this kind (/work/.library/env/packages/installed-python.txt, less Google's
# repository), entered with private mount, PID, UTS, IPC and cgroup namespaces (its own cgroup v1 tree under
# /sys/fs/cgroup/<controller>/fresh-machine), the host's network and kernel; the provisioning's CA certificates,
# pip configuration, wheel folders and environment as on a new machine of this kind.
#   machine.sh --reset  the root filesystem as mmdebstrap made it (rootfs.pristine.tar)
#   machine.sh CMD...   run CMD as root inside (its processes end when CMD ends)
set -euo pipefail
FRESH=${FRESH:-/srv/fresh}
R="$FRESH/rootfs"
CG=fresh-machine
if [ "${1:-}" = --reset ]; then
  rm -rf "$R" && mkdir "$R" && tar -C "$R" -xf "$FRESH/rootfs.pristine.tar"
  for h in /sys/fs/cgroup/*/; do [ -d "$h$CG" ] && find "$h$CG" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true; done
  exit 0
fi
if [ "${1:-}" != --inside ]; then
  for h in /sys/fs/cgroup/*/; do
    h=${h%/}; [ -L "$h" ] && continue
    mkdir -p "$h/$CG"
    if [ -e "$h/cpuset.cpus" ]; then
      [ -s "$h/$CG/cpuset.cpus" ] || cat "$h/cpuset.cpus" > "$h/$CG/cpuset.cpus"
      [ -s "$h/$CG/cpuset.mems" ] || cat "$h/cpuset.mems" > "$h/$CG/cpuset.mems"
    fi
    echo $$ > "$h/$CG/cgroup.procs"
  done
  exec unshare --cgroup --mount --pid --fork --uts --ipc --propagation private "$0" --inside "$@"
fi
shift
hostname fresh
mount --bind "$R" "$R"  # a mount of its own: pivot_root below (a chrooted process may not make user namespaces)
mount --rbind /dev "$R/dev"
mount -t tmpfs -o size=4g,mode=1777 shm "$R/dev/shm"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount -t tmpfs -o mode=755 cgroup_root "$R/sys/fs/cgroup"
while read -r _ _ _ _ point _ _ _ fstype _ super; do
  case "$fstype" in
    cgroup) mkdir -p "$R$point"; mount -t cgroup -o "${super#rw,}" cgroup "$R$point" ;;
    cgroup2) mkdir -p "$R$point"; mount -t cgroup2 cgroup2 "$R$point" ;;
  esac
done < <(grep -E ' - cgroup2? ' /proc/self/mountinfo | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$(NF-2),$(NF-1),$NF}')
for d in /opt/wheels /opt/pypi /opt/pypi-more; do mount --bind -o ro "$d" "$R$d"; done  # the provisioned wheels
mount -t tmpfs -o mode=755 run "$R/run"
mkdir -p "$R/run/lock"
cp /etc/resolv.conf "$R/etc/resolv.conf"
echo fresh > "$R/etc/hostname"
grep -q ' fresh$' "$R/etc/hosts" || echo "127.0.1.1 fresh" >> "$R/etc/hosts"
mkdir -p "$R/.oldroot"
cd "$R"
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
cd /
exec /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  $(env | grep -E '^(SSL_CERT_FILE|SSL_CERT_DIR|PIP_CERT|PIP_DEFAULT_TIMEOUT|PIP_DISABLE_PIP_VERSION_CHECK|PIP_FIND_LINKS|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|GIT_SSL_CAINFO)=') \
  /bin/bash -c "$*"
