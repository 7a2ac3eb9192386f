#!/bin/sh
# Installs the Debian packages nsimplex needs, if any is missing, and says so.
# Called by the Makefile before the first build; safe to run again.
set -eu
# python3-*: the Python package (python/) and its tests in make check
pkgs="libgmp-dev libmpfr-dev check libjansson-dev nettle-dev pkg-config python3-numpy python3-pytest python3-venv python3-setuptools python3-wheel"
[ "${NSX_DEPS_EXTRA:-}" ] && pkgs="$pkgs $NSX_DEPS_EXTRA"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "nsimplex: installing missing Debian packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "nsimplex: not root: run 'apt-get install$missing' as root, then make again" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $missing >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }
echo "nsimplex: installed:$missing"
