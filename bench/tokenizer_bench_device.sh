#!/usr/bin/env bash
# Runs bench/tokenizer_bench.py on the lent GPU machine's CPU (16 idle cores; the benchmark itself is one thread),
# where timings are not disturbed by other builds. Device tool:
#   run(command="bench/tokenizer_bench_device.sh", carry=[".devdeps"])     -> $OUT/tokenizer_bench.json, .log
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
DEPS=$ROOT/.devdeps
if [[ -d $DEPS/usr ]]; then  # the Debian -dev packages the machine lacks (scripts/device-deps.sh)
  ML=$DEPS/usr/lib/x86_64-linux-gnu
  for xzf in "$ML"/openblas-pthread/*.so.xz; do
    [[ -e $xzf && ! -e ${xzf%.xz} ]] &&
      python3 -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.open(sys.argv[1]).read())' "$xzf" "${xzf%.xz}"
  done
  export PKG_CONFIG_PATH=$ML/pkgconfig:$DEPS/usr/share/pkgconfig:$DEPS/usr/lib/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$DEPS
  export LD_LIBRARY_PATH=$ML:$ML/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export CMAKE_PREFIX_PATH=$DEPS/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
fi
PKGCONF=$(command -v pkg-config || echo "$DEPS/usr/bin/pkgconf")
cd "$ROOT"
cmake -S . -B build-tokbench -G Ninja -DCMAKE_BUILD_TYPE=Release -DVOLT_CUDA=OFF -DVOLT_QT=OFF -DVOLT_OPENCV=OFF \
  -DPKG_CONFIG_EXECUTABLE="$PKGCONF" >"$OUT/configure.log" 2>&1
cmake --build build-tokbench -j16 --target volt_bench_tokenizer >"$OUT/build.log" 2>&1
lscpu | grep -E "Model name|^CPU\(s\)|MHz" >"$OUT/cpu.txt" || true
python3 -c "import tokenizers; print('tokenizers', tokenizers.__version__)" | tee -a "$OUT/cpu.txt"
python3 bench/tokenizer_bench.py --volt-bench build-tokbench/bin/volt_bench_tokenizer --passes 3 \
  --json "$OUT/tokenizer_bench.json" 2>&1 | tee "$OUT/tokenizer_bench.log"
