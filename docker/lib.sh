# Shared helpers for docker/*/build.sh (sourced, not run).
#
# debian_mirror prints the Debian mirror this machine's apt uses (from
# /etc/apt/sources.list and /etc/apt/sources.list.d/*.list|*.sources),
# falling back to http://deb.debian.org/debian.
debian_mirror() {
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i ~ /^https?:\/\//) { print $i; exit } }' |
    grep -v -e security -e '^$' | head -n1 || true)
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
      awk 'tolower($1)=="uris:" { for (i=2;i<=NF;i++) print $i }' |
      grep -v security | grep -E '/debian/?$' | head -n1 || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# have_image NAME succeeds when the engine has image NAME.
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# debootstrap_root DIR PACKAGES: a minimal bookworm root in DIR with PACKAGES
# (comma-separated) installed and services kept from starting in the chroot.
debootstrap_root() {
  local root=$1 pkgs=$2
  mkdir -p "$root/usr/sbin"
  # policy-rc.d exit 101: package post-install scripts do not start services.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  # Progress on stderr: debootstrap's stages, warnings and errors and a
  # count of the packages retrieved, not its lines per package (the whole
  # output is kept in DIR.log).
  local tag=${DEBOOTSTRAP_TAG:-debootstrap}
  local line n=0
  debootstrap --variant=minbase --include="$pkgs" bookworm "$root" "$(debian_mirror)" 2>&1 |
    tee "$root.log" |
    while IFS= read -r line; do
      if [[ $line =~ ^I:\ Retrieving\ [^\ ]+\ [^\ ]+$ ]]; then
        n=$((n + 1))
        if [ $((n % 25)) = 0 ]; then echo "$tag: I: ... $n packages retrieved" >&2; fi
      elif ! [[ $line =~ ^I:\ Validating\ [^\ ]+\ [^\ ]+$ || $line =~ ^I:\ (Extracting|Unpacking|Configuring)\ [^\ ]+\.\.\.$ ]]; then
        echo "$tag: $line" >&2
      fi
    done
  # Keep the image small: package lists and caches are not needed to run.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* || true
}
