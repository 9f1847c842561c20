# The GPU machine's environment for Volt's builds and binaries, sourced by scripts/device-test.sh and by one-off
# device commands (`source scripts/device-env.sh && build-gpu/bin/...`): unpacks .devdeps from the carried tarball
# build-opsdeps/devdeps.tar.xz when the tree has none (the tracked tree plus .devdeps exceed the device tool's
# 64 MiB carry), then exports LD_LIBRARY_PATH (.devdeps' OpenBLAS, cuDNN and NCCL from the machine's PyPI packages),
# the pkg-config variables, PKGCONF and NCCL_ROOT. NVLink multicast stays off (NCCL_NVLS_ENABLE=0).
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export NCCL_NVLS_ENABLE=0
if [[ ! -d $ROOT/.devdeps/usr && -f $ROOT/build-opsdeps/devdeps.tar.xz ]]; then
  (cd "$ROOT" && python3 -c "import tarfile; tarfile.open('build-opsdeps/devdeps.tar.xz').extractall('.')")
fi

# Asked of the machine's Python before .devdeps' libraries are on LD_LIBRARY_PATH (they could shadow its own).
# libcudnn.so.9 for the cuDNN SDPA path (dlopen'ed by kernels/cuda/attention_cudnn.cu).
CUDNN_LIB=$(python3 -c 'import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null)

# NCCL (the backbone across GPUs, issue 8): the toolkit's if it has one, else the PyPI nvidia-nccl package PyTorch
# brings (headers + libnccl.so.2), passed to CMake as VOLT_NCCL_ROOT and put on LD_LIBRARY_PATH.
NCCL_ROOT=$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null)

# ---- dependencies carried as .devdeps (headers, static gtest, OpenBLAS + libgfortran, pkgconf) -----------------------
DEPS=$ROOT/.devdeps
if [[ -d $DEPS/usr ]]; then
  ML=$DEPS/usr/lib/x86_64-linux-gnu
  for xzf in "$ML"/openblas-pthread/*.so.xz; do  # device-deps.sh ships OpenBLAS compressed
    [[ -e $xzf && ! -e ${xzf%.xz} ]] &&
      python3 -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.open(sys.argv[1]).read())' "$xzf" "${xzf%.xz}"
  done
  export PKG_CONFIG_PATH=$ML/pkgconfig:$DEPS/usr/share/pkgconfig:$DEPS/usr/lib/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$DEPS  # the .pc files say prefix=/usr
  export LD_LIBRARY_PATH=$ML:$ML/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export CMAKE_PREFIX_PATH=$DEPS/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  PKGCONF=$(command -v pkg-config || true)
  [[ -z $PKGCONF ]] && PKGCONF=$DEPS/usr/bin/pkgconf
else
  PKGCONF=$(command -v pkg-config || echo pkg-config)
fi
# fla wheels (speed anchor), installed into a private target dir.
if compgen -G "$ROOT/.whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$ROOT"/.whl/*.whl >"${OUT:-/tmp}/pip.log" 2>&1 && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
[[ -n $CUDNN_LIB && -d $CUDNN_LIB ]] && export LD_LIBRARY_PATH=$CUDNN_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[[ -n $NCCL_ROOT && -d $NCCL_ROOT/lib ]] && export LD_LIBRARY_PATH=$NCCL_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
