#!/usr/bin/env bash
# Installs every Debian and PyPI package that Volt's build and tests need. Idempotent: a package already present
# is skipped, so a warm machine pays only for the checks. Works as root or through sudo. Downloads nothing from
# anywhere but Debian's archive and PyPI.
#
#   scripts/setup-deps.sh            build + test dependencies (what `make test` needs)
#   VOLT_SETUP_MINIMAL=1 ...         only the compiler toolchain and core libraries (no Qt, OpenCV)
set -euo pipefail

APT_PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git python3 python3-pip
  clang libclang-rt-14-dev   # libFuzzer targets (-fsanitize=fuzzer)
  # core
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev
  # text
  libpcre2-dev libutf8proc-dev libsentencepiece-dev
  # vision / documents
  libstb-dev
)
if [[ "${VOLT_SETUP_MINIMAL:-0}" != 1 ]]; then
  APT_PACKAGES+=(libopencv-dev libjpeg-dev qt6-base-dev qt6-pdf-dev libpoppler-cpp-dev xvfb xauth)
fi

# module:package (Pillow draws the demo model's procedural data, checked by CTest demo_model_data).
PIP_PACKAGES=(numpy:numpy pytest:pytest PIL:pillow)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup-deps: not root and no sudo; install: ${APT_PACKAGES[*]}" >&2; exit 1; }
  SUDO="sudo"
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup-deps: Debian packages present"
fi

pip_missing=()
for p in "${PIP_PACKAGES[@]}"; do
  python3 -c "import ${p%%:*}" 2>/dev/null || pip_missing+=("${p#*:}")
done
if ((${#pip_missing[@]})); then
  echo "setup-deps: pip installing ${pip_missing[*]}"
  python3 -m pip install -q "${pip_missing[@]}" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "${pip_missing[@]}"
fi
