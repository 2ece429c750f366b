#!/usr/bin/env bash
# The device kit's one command, on a GPU machine with no Node.js and no network:
#   bash device-kit/run.sh OUTDIR [bench gpu options, e.g. --time-limit 480 or --dry]
# Unpacks the kit's archives into $EARSHOT_KIT_DIR (default /tmp/earshot-kit), puts Debian's
# Vulkan loader on the library path where the system has none, adds NVIDIA's Vulkan driver to the
# loader's list where the driver left its manifest outside the loader's search path, and runs
# `bench gpu` with the kit's own Node. Results: OUTDIR/gpu-bench.json (rewritten after every
# figure), OUTDIR/gpu-bench.log, OUTDIR/kit-info.json, OUTDIR/machine.txt.
set -euo pipefail
KIT="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "${1:?usage: run.sh OUTDIR [bench gpu options]}"
OUT="$(cd "$1" && pwd)"
shift
DEST="${EARSHOT_KIT_DIR:-/tmp/earshot-kit}"
rm -rf "$DEST"
mkdir -p "$DEST"
for archive in "$KIT"/*.tar.xz; do
  if command -v xz >/dev/null; then
    tar -xJf "$archive" -C "$DEST"
  else # no xz here: Python's lzma reads it
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$archive" "$DEST"
  fi
done
cp "$KIT/kit-info.json" "$OUT/"

# onnxruntime's telemetry off in every process (earshot sets it too).
export ORT_DISABLE_TELEMETRY=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
LDCONFIG="$(command -v ldconfig || echo /sbin/ldconfig)"
LIBS="$DEST/lib"
mkdir -p "$LIBS"
for so in "$DEST"/vulkan/usr/lib/x86_64-linux-gnu/*.so.*; do
  name="$(basename "$so")"
  # EARSHOT_KIT_OWN_VULKAN=1 takes the kit's even where the system has its own (the dry run does).
  if [ "${EARSHOT_KIT_OWN_VULKAN:-}" = 1 ] || ! "$LDCONFIG" -p 2>/dev/null | awk '{print $1}' | grep -qx "$name"; then ln -sf "$so" "$LIBS/$name"; fi
done
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# NVIDIA's driver mounted under /usr/local/nvidia leaves its manifest where the loader does not look:
# added to the loader's list (VK_ADD_DRIVER_FILES, loader 1.3.234 and later), unless one is named already.
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$f" ]; then export VK_ADD_DRIVER_FILES="$f"; break; fi
  done
fi

{
  echo "kit: $(cat "$KIT/kit-info.json" | tr -d '\n ')"
  echo "kernel: $(uname -r)"
  echo "libvulkan from the kit: $(ls "$LIBS" | tr '\n' ' ')"
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-} VK_ADD_DRIVER_FILES=${VK_ADD_DRIVER_FILES:-}"
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null || true
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "no nvidia-smi"
} >"$OUT/machine.txt" 2>&1

cd "$DEST"
set +e
"$DEST/bin/node" dist/bench/gpu.mjs --out "$OUT" --clips "$DEST/shared/audio/real-en" "$@" 2>&1 | grep --line-buffered -v '^Warning: max.*artificially reduced' | tee "$OUT/gpu-bench.log"
exit "${PIPESTATUS[0]}"
