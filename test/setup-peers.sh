#!/usr/bin/env bash
# Installs the real peers the test suite talks to (Debian packages) when they are missing,
# and gathers real sample DICOM files from Debian packages into test/.cache/samples.
# Idempotent and quiet when everything is already there. Run by `npm test` before tap.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "setup-peers: $*" >&2; exit 1; }

PKGS=(orthanc orthanc-dicomweb orthanc-gdcm dcmtk dicom3tools libgdcm-tools xmlsec1 chromium postgresql haproxy systemd)
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in "${PKGS[@]}"; do have "$p" || need+=("$p"); done
if [[ ${#need[@]} -gt 0 ]]; then
  [[ $(id -u) = 0 ]] || die "missing Debian packages: ${need[*]} (run as root, or apt-get install them)"
  echo "setup-peers: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # a temporary policy-rc.d keeps the packaged Orthanc, PostgreSQL and HAProxy services from starting:
  # tests run their own
  own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [[ $own_policy = 1 ]] && rm -f /usr/sbin/policy-rc.d
fi
# The Debian package may have started its system Orthanc (port 8042 on all interfaces): stop it.
if command -v service >/dev/null && pgrep -x Orthanc >/dev/null && [[ -f /etc/orthanc/orthanc.json ]]; then
  pgrep -af Orthanc | grep -q /etc/orthanc && { service orthanc stop >/dev/null 2>&1 || true; }
fi
# The same for the packaged PostgreSQL cluster and HAProxy (tests start throw-away ones on loopback).
if command -v service >/dev/null; then
  pgrep -x postgres >/dev/null && pgrep -af postgres | grep -q /etc/postgresql && { service postgresql stop >/dev/null 2>&1 || true; }
  pgrep -x haproxy >/dev/null && pgrep -af haproxy | grep -q /etc/haproxy/haproxy.cfg && { service haproxy stop >/dev/null 2>&1 || true; }
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "PostgreSQL initdb missing after install"
for bin in Orthanc dcmdump storescu dciodvfy xmlsec1 chromium gdcmconv haproxy systemd-analyze; do
  command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] || die "$bin still missing after install"
done
[[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]] || ls /usr/lib/orthanc/libOrthancDicomWeb.so* >/dev/null 2>&1 \
  || die "Orthanc DICOMweb plugin missing"

# Real sample DICOM files shipped inside Debian packages (downloaded, unpacked, not installed).
SAMPLES=test/.cache/samples
if [[ ! -f $SAMPLES/.complete ]]; then
  rm -rf "$SAMPLES"; mkdir -p "$SAMPLES"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  ( cd "$tmp" && apt-get download python3-pydicom >/dev/null 2>&1 ) \
    || { apt-get update -qq && ( cd "$tmp" && apt-get download python3-pydicom >/dev/null ); } \
    || die "apt-get download python3-pydicom failed"
  dpkg-deb -x "$tmp"/python3-pydicom_*.deb "$tmp/x"
  cp -r "$tmp/x/usr/lib/python3/dist-packages/pydicom/data/test_files" "$SAMPLES/pydicom"
  touch "$SAMPLES/.complete"
fi
echo "setup-peers: Orthanc $(Orthanc --version 2>/dev/null | head -1 | awk '{print $NF}'), dcmtk, dicom3tools, xmlsec1, chromium, PostgreSQL, HAProxy ready" >&2
