#!/usr/bin/env bash
# Fetches, on this (development) machine, the Debian packages that building Volt needs but the GPU machine lacks
# (it has nvcc, cmake, ninja and Python but no -dev packages and no registry access), and unpacks them into
# .devdeps/ (git-ignored). Pass `carry: [".devdeps"]` to the device tool; scripts/device-test.sh points CMake,
# pkg-config and the loader at it. Idempotent: delete .devdeps to refetch.
#
#   scripts/device-deps.sh          -> .devdeps/usr/{include,lib,share,bin}
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.devdeps
[[ -f $DEST/.complete ]] && { echo "device-deps: $DEST is complete ($(du -sh $DEST | cut -f1))"; exit 0; }

# Everything cmake/VoltDependencies.cmake requires with the gpu preset (Qt/OpenCV off, poppler optional):
# nlohmann-json, CLI11 (headers); GoogleTest (static libs + CMake config); OpenBLAS (+ libgfortran at run time);
# PCRE2, utf8proc, SentencePiece (+ protobuf-lite) for the tokenizers; stb_image for vision; pkgconf in case the
# GPU image has no pkg-config.
PACKAGES=(nlohmann-json3-dev libcli11-dev libgtest-dev googletest
          libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libgfortran5 libquadmath0
          libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
          libutf8proc-dev libutf8proc2 libsentencepiece-dev libsentencepiece0 libprotobuf-lite32
          libstb-dev libstb0
          pkgconf pkgconf-bin libpkgconf3)

# A private apt state so the machine's own lists and cache are left alone.
STATE=$(mktemp -d)
trap 'rm -rf "$STATE"' EXIT
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$STATE/lists" -oDir::Cache="$STATE/cache")
mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial" "$STATE/debs"
apt-get "${o[@]}" update -qq
(cd "$STATE/debs" && apt-get "${o[@]}" download "${PACKAGES[@]}" 2>&1 | grep -v '^Get:' || true)
rm -rf "$DEST"
mkdir -p "$DEST"
for f in "$STATE"/debs/*.deb; do dpkg -x "$f" "$DEST"; done

# Debian selects the OpenBLAS flavour through update-alternatives, which dpkg -x does not run: make the links.
ML=$DEST/usr/lib/x86_64-linux-gnu
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0 libblas.so liblapack.so libopenblas.so; do
  src=$(ls "$ML"/openblas-pthread/"$lib" 2>/dev/null || true)
  [[ -n $src && ! -e $ML/$lib ]] && ln -sf "openblas-pthread/$lib" "$ML/$lib"
done
if [[ ! -e $ML/pkgconfig/openblas.pc ]]; then
  pc=$(find "$ML" -name 'openblas*.pc' | head -1)
  [[ -n $pc ]] && { mkdir -p "$ML/pkgconfig"; cp "$pc" "$ML/pkgconfig/openblas.pc"; }
fi
# Drop what a build never reads (docs, man pages, GoogleTest sources) to keep the carry small.
# OpenBLAS's static archive (57 MB) and LAPACK (7 MB) alone would take most of the device tool's 64 MiB carry.
rm -rf "$DEST"/usr/share/doc "$DEST"/usr/share/man "$DEST"/usr/src "$DEST"/usr/share/lintian
find "$DEST" -name 'liblapack*' -delete
find "$DEST" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete  # shared libraries are linked
# OpenBLAS itself is 36 MB of the carry's 64 MiB: ship it xz-compressed (~4x smaller); device-test.sh unpacks it.
for so in "$DEST"/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r*.so; do xz -T2 -6 "$so"; done
touch "$DEST/.complete"
echo "device-deps: $(du -sh $DEST | cut -f1) in $DEST"
