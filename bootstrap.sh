#!/usr/bin/env bash
# Sets up what `make run` and `make test` need, printing each step; a second call
# skips finished steps in seconds.
#   0. g++ and the Python headers, with which pip compiles pyfarmhash (no wheel on PyPI).
#   1. glibc >= 2.38 and GLIBCXX_3.4.32 (the ml-metadata and tensorflow-data-validation
#      1.21 wheels need them). On Debian 12 they come from Debian trixie, pinned at
#      priority 100 so nothing else is upgraded; elsewhere we stop with a clear message.
#   2. A virtualenv in .venv with this project installed (editable) with its test extras.
#   3. With --browser (make test): Debian's chromium and chromedriver (the web page test),
#      prometheus with promtool (the metrics scrape test), mariadb-server (ML Metadata on a
#      MySQL-compatible server) and nginx (the rate-limiting proxy's test); no service is started or enabled.
#   4. ONNX Runtime Web from the npm registry, for the page's in-browser classification (with
#      --browser npm is installed if missing; without it, the step is skipped when npm is absent).
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PYTHON=${PYTHON:-python3}
# apt's and pip's own output goes here; a failing command prints its last lines.
LOG=${BOOTSTRAP_LOG:-outputs/bootstrap.log}
mkdir -p "$(dirname "$LOG")"
step() { printf '==> %s\n' "$*"; }
quietly() {
  echo "\$ $*" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    echo "ERROR: '$*' failed; the last lines of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
}

glibc_ok() {
  # True when the C library is >= 2.38 and libstdc++ exports GLIBCXX_3.4.32.
  local v
  v=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
  [ "$(printf '%s\n2.38\n' "$v" | sort -V | head -1)" = "2.38" ] || return 1
  local libstdcxx
  libstdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 /{print $NF; exit}')
  [ -n "$libstdcxx" ] && grep -qa GLIBCXX_3.4.32 "$libstdcxx"
}

debian_sources_uri() {
  # The URI of the machine's existing main Debian source, so trixie comes from the same mirror.
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_glibc() {
  if glibc_ok; then
    step "glibc $(getconf GNU_LIBC_VERSION | awk '{print $2}') and GLIBCXX_3.4.32 present: nothing to install"
    return
  fi
  local codename=""
  [ -r /etc/os-release ] && codename=$(. /etc/os-release; echo "${VERSION_CODENAME:-}")
  if [ "$codename" != "bookworm" ]; then
    echo "ERROR: TFX 1.21 (ml-metadata, tensorflow-data-validation) needs glibc >= 2.38 and" >&2
    echo "libstdc++ with GLIBCXX_3.4.32; this machine has $(getconf GNU_LIBC_VERSION)." >&2
    echo "Automatic set-up covers Debian 12 only; use Debian 13 / Ubuntu 24.04 or newer." >&2
    exit 1
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  local uri
  uri=$(debian_sources_uri)
  step "Debian 12 has $(getconf GNU_LIBC_VERSION); adding Debian trixie from $uri at apt priority 100"
  $sudo tee /etc/apt/sources.list.d/mnist-tfx-trixie.sources >/dev/null <<SRC
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $sudo tee /etc/apt/preferences.d/mnist-tfx-trixie >/dev/null <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  step "apt-get update; apt-get install -t trixie libc6 libstdc++6 (output in $LOG)"
  quietly $sudo apt-get update -qq
  quietly env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -t trixie libc6 libstdc++6
  glibc_ok || { echo "ERROR: glibc/libstdc++ still too old after the trixie install" >&2; exit 1; }
}

ensure_build_tools() {
  # tensorflow-data-validation 1.21 pins pyfarmhash below 0.4, which PyPI has as source only: pip
  # compiles it, with g++ and the interpreter's headers. On Debian 12 this runs before glibc comes
  # from trixie, whose install then takes libc6-dev along with libc6.
  local include missing=()
  include=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  command -v g++ >/dev/null || missing+=(g++)
  [ -f "$include/Python.h" ] || missing+=(python3-dev)
  if [ ${#missing[@]} = 0 ]; then
    step "g++ and the headers of $($PYTHON --version) present: nothing to install"
    return
  fi
  if ! command -v apt-get >/dev/null; then
    echo "ERROR: pip compiles pyfarmhash (a tensorflow-data-validation dependency): install a C++" >&2
    echo "compiler and the headers of $($PYTHON --version) (Debian: ${missing[*]})" >&2
    exit 1
  fi
  if [ -f /etc/apt/preferences.d/mnist-tfx-trixie ] \
      && ! dpkg-query -W -f='${Status}' libc6-dev 2>/dev/null | grep -q "ok installed"; then
    missing+=(libc6-dev/trixie)  # glibc came from trixie already: its headers must match it
  fi
  step "apt-get install ${missing[*]} (pip compiles pyfarmhash, which tensorflow-data-validation needs; output in $LOG)"
  apt_install "${missing[@]}"
}

ensure_venv() {
  # The stamp holds a hash of setup.py: editing the dependencies triggers a reinstall.
  local stamp="$VENV/.mnist-tfx-installed"
  local want
  want=$(sha256sum setup.py | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    step "$VENV is up to date with setup.py: nothing to install"
    return
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    step "Creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
  fi
  step "Installing mnist-tfx and its test extras into $VENV (first time: about 3 minutes, 3.3 GB; output in $LOG)"
  quietly "$VENV/bin/pip" install -q --upgrade pip
  # compat mode: a .pth with the project root, so packages added later import without a reinstall.
  quietly "$VENV/bin/pip" install -q -e ".[test]" --config-settings editable_mode=compat
  echo "$want" > "$stamp"
}

ensure_test_tools() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v prometheus >/dev/null \
      && command -v promtool >/dev/null && PATH="$PATH:/usr/sbin" command -v mariadbd >/dev/null \
      && PATH="$PATH:/usr/sbin" command -v nginx >/dev/null; then
    step "chromium, chromedriver, prometheus, promtool, mariadbd and nginx present: nothing to install"
    return
  fi
  if ! command -v apt-get >/dev/null; then
    echo "ERROR: the tests need chromium, chromedriver, prometheus, promtool, mariadbd and nginx on PATH; install them" >&2
    exit 1
  fi
  step "apt-get install chromium chromium-driver prometheus mariadb-server nginx (web page, metrics scrape, ML Metadata and rate-limit proxy tests; ~1 min; output in $LOG)"
  apt_install chromium chromium-driver prometheus mariadb-server nginx
}

apt_install() {  # Debian packages, as root or with sudo
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  quietly $sudo apt-get update -qq
  # No service is started: the tests start their own Prometheus, MariaDB and nginx on 127.0.0.1 and stop
  # them (policy-rc.d 101 keeps the packages' scripts from starting them at install time).
  local policy=/usr/sbin/policy-rc.d created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && created_policy=1
  fi
  quietly $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  [ -z "$created_policy" ] || $sudo rm -f "$policy"
}

# The draw-a-digit page classifies in the browser with ONNX Runtime Web (serving/server/web_files.py
# serves it). Its files come from the npm registry here, never from a CDN at page load; MIT licence
# (package.json, copied beside them).
ORT_WEB_VERSION=1.31.1
ORT_WEB_DIR=serving/web/vendor/ort
ensure_page_runtime() {  # $1: "required" (the tests need it) or "optional" (a failure is a warning)
  if [ -f "$ORT_WEB_DIR/.version" ] && [ "$(cat "$ORT_WEB_DIR/.version")" = "$ORT_WEB_VERSION" ]; then
    step "ONNX Runtime Web $ORT_WEB_VERSION present in $ORT_WEB_DIR"
    return
  fi
  if [ "$1" != required ]; then  # the pipeline does not need it: never stop the set-up over it
    if ! command -v npm >/dev/null || ! (ensure_page_runtime required); then
      step "WARNING: ONNX Runtime Web not installed (no npm, or the npm registry failed; see $LOG):" \
        "the page will classify on the server only; ./bootstrap.sh --browser installs it"
    fi
    return
  fi
  if ! command -v npm >/dev/null; then
    if ! command -v apt-get >/dev/null; then
      echo "ERROR: the page test needs npm (to fetch ONNX Runtime Web from the npm registry); install it" >&2
      exit 1
    fi
    step "apt-get install npm (fetches the page's in-browser runtime from the npm registry; output in $LOG)"
    apt_install npm
  fi
  step "ONNX Runtime Web $ORT_WEB_VERSION from the npm registry into $ORT_WEB_DIR (35 MB download, 15 MB kept)"
  local tmp="$ORT_WEB_DIR.download"  # inside the ignored vendor folder; a failed attempt's is removed next time
  rm -rf "$tmp" && mkdir -p "$tmp"
  quietly npm pack --silent --pack-destination "$tmp" "onnxruntime-web@$ORT_WEB_VERSION"
  quietly tar -xzf "$tmp/onnxruntime-web-$ORT_WEB_VERSION.tgz" -C "$tmp" package/package.json \
    package/dist/ort.wasm.min.js package/dist/ort-wasm-simd-threaded.mjs package/dist/ort-wasm-simd-threaded.wasm
  mkdir -p "$ORT_WEB_DIR"
  cp "$tmp"/package/dist/* "$tmp/package/package.json" "$ORT_WEB_DIR/"
  echo "$ORT_WEB_VERSION" > "$ORT_WEB_DIR/.version"
  rm -rf "$tmp"
}

ensure_build_tools
ensure_glibc
ensure_venv
if [ "${1:-}" = "--browser" ]; then
  ensure_test_tools
  ensure_page_runtime required
else
  ensure_page_runtime optional
fi
step "Set-up complete"
