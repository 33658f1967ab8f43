#!/usr/bin/env bash
# Packs everything the GPU machine needs to run imagedata-multistream and tributary-benchmark
# (it has no Swift, no GStreamer, no network, and receives at most 64 MiB per call), and unpacks it
# there. See docs/gpu-device.md for the sequence of device calls.
#
#   bash scripts/device_bundle.sh pack       HERE:   build, collect, compress, split into .bundle/piece.NN
#   bash scripts/device_bundle.sh simulate   HERE:   stage + unpack + checks into /tmp/sim (no GPU needed)
#   bash scripts/device_bundle.sh sizes      HERE:   compressed size of each part of the last packed tree (slow)
#   bash scripts/device_bundle.sh stage      DEVICE: copy the carried piece(s) into $TB_STAGE
#   bash scripts/device_bundle.sh unpack     DEVICE: stage, then cat pieces | xz -d | tar x -> $TB_ROOT/tb
#   bash scripts/device_bundle.sh shell      DEVICE: print the line that sets up the environment
#   bash scripts/device_bundle.sh check      DEVICE: gst-inspect nvcodec, ldd checks, nvidia-smi, --help
#   bash scripts/device_bundle.sh unpack-base DEVICE: base.tar.xz + app.tar.xz -> $TB_ROOT/tb (first call)
#   bash scripts/device_bundle.sh bench      DEVICE: after unpack: --gpu-check, --gpu-table (+ --gpus scaling); BENCH_PARTS picks
#   bash scripts/device_bundle.sh diag       DEVICE: after unpack-base: steady-state FPS, CPU per thread, NVDEC/SM busy (no detector)
#
# Overridable: TB_BUNDLE (default <repo>/.bundle), TB_STAGE (/tmp/tb-stage), TB_ROOT (/tmp: the
# bundle lands in $TB_ROOT/tb), ORT_GPU_VERSION (1.31.1), PIECE_MIB (56), TB_WITH_INT8 (1),
# TB_SKIP_BUILD (0; 1 packs the binaries already in .build-static, e.g. while others' edits break the build).
# Every step is idempotent: pack rebuilds the tree cheaply, and re-compresses only when its
# content changed; unpack does nothing when $TB_ROOT/tb/.complete matches the stream checksum.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUNDLE=${TB_BUNDLE:-$ROOT/.bundle}
STAGE=${TB_STAGE:-/tmp/tb-stage}
TB_ROOT=${TB_ROOT:-/tmp}
ORT_GPU_VERSION=${ORT_GPU_VERSION:-1.31.1}
PIECE_MIB=${PIECE_MIB:-56}
TB_WITH_INT8=${TB_WITH_INT8:-1}
SCRATCH=.build-static
GST_PLUGIN_DIR=/usr/lib/x86_64-linux-gnu/gstreamer-1.0
GST_SCANNER=/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner
PLUGINS=(coreelements typefindfunctions playback app isomp4 videoparsersbad nvcodec videoconvertscale
         videotestsrc x264 rtsp rtp rtpmanager udp
         jpeg       # jpegenc, used by --save-frames
         openh264)  # openh264dec: CPU H.264 fallback (rank marginal) should NVDEC be unavailable; 1.3 MB
PRODUCTS=(imagedata-multistream tributary-benchmark)
CLIP_FRAMES=450
CLIP_MAX_BYTES=12000000
# Not bundled: glibc (the device's newer one is used) and the C++ runtime (ABI compatible, newer there).
EXCLUDE_RE='^(libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.so(\.[0-9]+)*$|^ld-linux'

log() { printf '[device_bundle] %s\n' "$*"; }
die() { printf '[device_bundle] error: %s\n' "$*" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
fsize() { stat -c %s "$1"; }

# ================================================================================================
# HERE: pack
# ================================================================================================

ensure_setup() {
  if [ ! -d .deps ] || [ ! -e models/yolov3-tiny-416.onnx ] || [ ! -e media/sample_1080p_h264.mp4 ]; then
    log "running scripts/setup.sh (.deps, models or media missing)"
    bash scripts/setup.sh
  fi
  local need=(gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
              gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-rtsp
              fonts-dejavu-core binutils xz-utils python3-gi gir1.2-gstreamer-1.0)
  source scripts/apt-missing.sh
  apt_install_missing "${need[@]}"
}

# One product at a time (2 cores). Others edit the sources while we build: SwiftPM then stops with
# "modified during the build"; wait and retry.
build_products() {
  local product try logf=$BUNDLE/build.log
  if [ "${TB_SKIP_BUILD:-0}" = 1 ]; then
    for product in "${PRODUCTS[@]}"; do [ -x "$SCRATCH/release/$product" ] || die "TB_SKIP_BUILD=1 but $SCRATCH/release/$product is missing"; done
    log "TB_SKIP_BUILD=1: packing the binaries already in $SCRATCH/release"
    return 0
  fi
  for product in "${PRODUCTS[@]}"; do
    for try in 1 2 3 4 5 6 7 8 9 10; do
      log "swift build -c release --static-swift-stdlib --scratch-path $SCRATCH --product $product (try $try)"
      if swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product "$product" >"$logf" 2>&1; then
        break
      fi
      if grep -q "modified during the build" "$logf" && ((try < 10)); then
        log "a source file changed during the build (someone is editing); retrying in 30 s"
        sleep 30
        continue
      fi
      grep -E "error:" "$logf" | head -20 >&2 || tail -20 "$logf" >&2
      die "static build of $product failed (full log: $logf)"
    done
    [ -x "$SCRATCH/release/$product" ] || die "$SCRATCH/release/$product missing after the build"
  done
}

# The ONNX Runtime GPU wheel: the pinned version, else the newest one whose CUDA provider links
# CUDA 13 (libcudart.so.13).
PIP_TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64)
wheel_for() { ls "$BUNDLE"/wheels/onnxruntime_gpu-"$1"-*.whl 2>/dev/null | head -n1; }
download_wheel() { # version
  [ -n "$(wheel_for "$1")" ] && return 0
  log "downloading onnxruntime-gpu==$1 (about 250 MB)"
  python3 -m pip download -q --no-deps "${PIP_TARGET[@]}" "onnxruntime-gpu==$1" -d "$BUNDLE/wheels" >/dev/null 2>&1
}
extract_ort() { # wheel, dest; extracts the three libraries ORT needs (no TensorRT, no Python binding)
  local whl=$1 dest=$2
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  python3 - "$whl" "$dest.tmp" <<'EOF'
import re, shutil, sys, zipfile, os
whl, dest = sys.argv[1], sys.argv[2]
want = re.compile(r"^onnxruntime/capi/(libonnxruntime\.so\.[0-9.]+|libonnxruntime_providers_cuda\.so|libonnxruntime_providers_shared\.so)$")
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        if want.match(info.filename):
            out = os.path.join(dest, os.path.basename(info.filename))
            with z.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.chmod(out, 0o755)
EOF
  mv -T "$dest.tmp" "$dest"
}
fetch_ort() {
  local version=$ORT_GPU_VERSION cache
  mkdir -p "$BUNDLE/wheels" "$BUNDLE/cache"
  if ! download_wheel "$version"; then
    log "onnxruntime-gpu==$version not found; looking for the newest CUDA 13 build"
    local versions v
    versions=$(python3 -m pip index versions onnxruntime-gpu "${PIP_TARGET[@]}" 2>/dev/null \
               | sed -n 's/^Available versions: //p' | tr -d ',')
    log "available: $versions"
    version=
    for v in $versions; do
      download_wheel "$v" || continue
      extract_ort "$(wheel_for "$v")" "$BUNDLE/cache/ort-$v"
      if readelf -d "$BUNDLE/cache/ort-$v/libonnxruntime_providers_cuda.so" | grep -q 'libcudart.so.13'; then
        version=$v; break
      fi
      log "onnxruntime-gpu $v is not a CUDA 13 build; skipping"
    done
    [ -n "$version" ] || die "no onnxruntime-gpu wheel for CUDA 13 found"
  fi
  ORT_VERSION_USED=$version
  cache=$BUNDLE/cache/ort-$version
  if [ ! -e "$cache/libonnxruntime_providers_cuda.so" ] || [ "$cache" -ot "$(wheel_for "$version")" ]; then
    log "extracting the ORT libraries from $(basename "$(wheel_for "$version")")"
    extract_ort "$(wheel_for "$version")" "$cache"
  fi
  readelf -d "$cache/libonnxruntime_providers_cuda.so" | grep -q 'libcudart.so.13' \
    || die "onnxruntime-gpu $version's CUDA provider does not link libcudart.so.13 (not a CUDA 13 build)"
  ORT_CACHE=$cache
}

# The first 15 s (450 frames) of the 1080p sample, re-encoded: the source's GOP is 60 frames with
# B-frames, so a cut without re-encoding would not end cleanly at frame 450. `identity eos-after`
# is not frame-exact after a threaded decoder (it passes a few frames more or less), so the cut is
# a pad probe (Debian's python3-gi): decoded frames 1..450 go to the encoder, then EOS.
make_clip() {
  local src=media/sample_1080p_h264.mp4 out=$BUNDLE/cache/clip_1080p.mp4 bitrate stamp
  stamp="$(stat -c '%s %Y' "$src") frames=$CLIP_FRAMES v3"
  if [ -e "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  for bitrate in 6000 5200 4500; do
    log "encoding $src -> clip_1080p.mp4 ($CLIP_FRAMES frames, x264 $bitrate kbit/s)"
    rm -f "$out.part"
    /usr/bin/python3 - "$src" "$out.part" "$CLIP_FRAMES" "$bitrate" <<'EOF'
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
src, out, frames, bitrate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pipeline = Gst.parse_launch(
    f'filesrc location="{src}" ! qtdemux ! h264parse ! avdec_h264 name=dec ! videoconvert '
    f'! video/x-raw,format=I420,width=1920,height=1080,framerate=30/1 '
    f'! x264enc bitrate={bitrate} speed-preset=faster key-int-max=30 ! video/x-h264,profile=high '
    f'! h264parse ! mp4mux ! filesink location="{out}"')
count = 0
def probe(pad, info):
    global count
    if info.type & Gst.PadProbeType.BUFFER:
        count += 1
        if count == frames + 1:
            pad.get_peer().send_event(Gst.Event.new_eos())
        return Gst.PadProbeReturn.DROP if count > frames else Gst.PadProbeReturn.OK
    if info.type & Gst.PadProbeType.EVENT_DOWNSTREAM and info.get_event().type == Gst.EventType.EOS and count > frames:
        return Gst.PadProbeReturn.DROP  # the file's own EOS, after ours
    return Gst.PadProbeReturn.OK
pipeline.get_by_name("dec").get_static_pad("src").add_probe(
    Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM, probe)
pipeline.set_state(Gst.State.PLAYING)
msg = pipeline.get_bus().timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR)
pipeline.set_state(Gst.State.NULL)
if msg.type == Gst.MessageType.ERROR:
    err, debug = msg.parse_error()
    sys.exit(f"clip: {err.message} ({debug})")
if count < frames:
    sys.exit(f"clip: the source has only {count} frames")
EOF
    if (($(fsize "$out.part") <= CLIP_MAX_BYTES)); then break; fi
    log "clip is $(fsize "$out.part") bytes (> $CLIP_MAX_BYTES); lowering the bitrate"
  done
  (($(fsize "$out.part") <= CLIP_MAX_BYTES)) || die "clip still larger than $CLIP_MAX_BYTES bytes"
  mv "$out.part" "$out"
  echo "$stamp" > "$out.stamp"
}

# The clip five times over without re-encoding (2 250 frames, 75 s), carried on its own in the
# latency call (bench's `latency` part): no stream loops inside its 60-s window.
make_long_clip() {
  local clip=$BUNDLE/cache/clip_1080p.mp4 out=$BUNDLE/clip_1080p_75s.mp4
  if [ -e "$out" ] && [ "$out" -nt "$clip" ]; then return 0; fi
  log "clip_1080p.mp4 x 5 -> clip_1080p_75s.mp4 (no re-encoding)"
  ffmpeg -loglevel error -y -stream_loop 4 -i "$clip" -c copy "$out.part.mp4"
  mv "$out.part.mp4" "$out"
}

write_env_sh() { # $1 = file
  cat > "$1" <<'EOF'
# Tributary on the GPU machine: `source /tmp/tb/env.sh` (bash; in sh, set TB first).
# Written by scripts/device_bundle.sh pack.
if [ -n "${BASH_SOURCE:-}" ]; then TB=$(cd "$(dirname "$BASH_SOURCE")" && pwd); else TB=${TB:-/tmp/tb}; fi
export TB
# CUDA libraries of the device's Python venv (cu13 first): cudart, cublas, curand, cufft, cudnn, nvrtc.
_tb_nv=
for _tb_d in ${TB_NVIDIA_LIB_DIRS:-} \
    /opt/torch/.venv/lib/python3.*/site-packages/nvidia/cu13/lib \
    /opt/torch/.venv/lib/python3.*/site-packages/nvidia/*/lib; do
  [ -d "$_tb_d" ] || continue
  case ":$_tb_nv:" in *":$_tb_d:"*) continue ;; esac
  _tb_nv=${_tb_nv:+$_tb_nv:}$_tb_d
done
if [ -z "$_tb_nv" ]; then # another venv or a system Python, if /opt/torch has none
  for _tb_d in /opt/*/.venv/lib/python3.*/site-packages/nvidia/cu13/lib /opt/*/.venv/lib/python3.*/site-packages/nvidia/*/lib \
      /usr/local/lib/python3.*/dist-packages/nvidia/*/lib /usr/lib/python3/dist-packages/nvidia/*/lib; do
    [ -d "$_tb_d" ] || continue
    case ":$_tb_nv:" in *":$_tb_d:"*) continue ;; esac
    _tb_nv=${_tb_nv:+$_tb_nv:}$_tb_d
  done
fi
export TB_NVIDIA_LIBS=$_tb_nv
export LD_LIBRARY_PATH=$TB/lib:$TB/ort${_tb_nv:+:$_tb_nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
_tb_nvrtc=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13
if [ ! -e "$_tb_nvrtc" ]; then
  _tb_nvrtc=
  _tb_ifs=$IFS; IFS=:
  for _tb_d in $_tb_nv; do
    if [ -e "$_tb_d/libnvrtc.so.13" ]; then _tb_nvrtc=$_tb_d/libnvrtc.so.13; break; fi
  done
  IFS=$_tb_ifs
fi
if [ -n "$_tb_nvrtc" ]; then
  export TRIBUTARY_NVRTC_LIBRARY=$_tb_nvrtc
  export GST_CUDA_NVRTC_LIBNAME=$_tb_nvrtc   # GStreamer's own CUDA converters (cudaconvert, cudascale)
else
  echo "env.sh: libnvrtc.so.13 not found under the venv's nvidia/*/lib" >&2
fi
export TRIBUTARY_ONNXRUNTIME_LIBRARY=$TB/ort/libonnxruntime.so
export GST_PLUGIN_SYSTEM_PATH_1_0=$TB/gstreamer-1.0
export GST_PLUGIN_PATH_1_0=
export GST_PLUGIN_SCANNER_1_0=$TB/libexec/gst-plugin-scanner
export GST_REGISTRY_1_0=/tmp/tb-registry.bin
export GIO_MODULE_DIR=$TB/gio-modules         # empty: never load the device's (newer) GIO modules
export FONTCONFIG_FILE=$TB/fonts/fonts.conf
export GST_DEBUG_NO_COLOR=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}   # GLib warns without one (no login session there)
export PATH=$TB/bin:$PATH
unset _tb_nv _tb_d _tb_nvrtc _tb_ifs
EOF
}

write_fonts_conf() { # $1 = file
  cat > "$1" <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<!-- Only the bundled DejaVu Sans, in the folder this file is in. -->
<fontconfig>
  <dir prefix="relative">.</dir>
  <cachedir>/tmp/tb-fontconfig-cache</cachedir>
  <alias><family>sans-serif</family><prefer><family>DejaVu Sans</family></prefer></alias>
  <alias><family>Sans</family><prefer><family>DejaVu Sans</family></prefer></alias>
  <alias><family>monospace</family><prefer><family>DejaVu Sans</family></prefer></alias>
</fontconfig>
EOF
}

# Shared libraries the given ELF files need (transitively, ldd), as "needed-name path" lines.
needed_libs() {
  local f
  for f in "$@"; do
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 } $2 == "=>" && $3 == "not" { print "MISSING", $1 }'
  done | sort -u
}

assemble_tree() { # $1 = tree root; fills $1/tb
  local tree=$1 tb=$1/tb p f name path
  rm -rf "$tree" && mkdir -p "$tb"/{bin,lib,gstreamer-1.0,libexec,fonts,ort,models,configs,media,gio-modules}
  for p in "${PRODUCTS[@]}"; do cp -p "$SCRATCH/release/$p" "$tb/bin/$p"; done
  cp -p /usr/bin/gst-launch-1.0 /usr/bin/gst-inspect-1.0 "$tb/bin/"
  cp -p "$GST_SCANNER" "$tb/libexec/gst-plugin-scanner"
  for p in "${PLUGINS[@]}"; do
    f=$GST_PLUGIN_DIR/libgst$p.so
    [ -e "$f" ] || die "plugin $p missing: $f"
    cp -p "$f" "$tb/gstreamer-1.0/"
  done
  # libgstcuda is dlopened by our code (ldd of the binaries does not show it).
  local extra=(/usr/lib/x86_64-linux-gnu/libgstcuda-1.0.so.0)
  local elves=("$tb"/bin/* "$tb/libexec/gst-plugin-scanner" "$tb"/gstreamer-1.0/*.so "${extra[@]}")
  local missing=()
  while read -r name path; do
    if [ "$name" = MISSING ]; then missing+=("$path"); continue; fi
    [[ $name =~ $EXCLUDE_RE ]] && continue
    cp -L --preserve=mode,timestamps "$path" "$tb/lib/$name"
  done < <(needed_libs "${elves[@]}")
  ((${#missing[@]} == 0)) || die "ldd reports missing libraries: ${missing[*]}"
  for f in "${extra[@]}"; do cp -L --preserve=mode,timestamps "$f" "$tb/lib/$(basename "$f")"; done
  # ORT: hard links into the cache (no copy of the 280 MB provider).
  for f in "$ORT_CACHE"/*; do ln "$f" "$tb/ort/" 2>/dev/null || cp -p "$f" "$tb/ort/"; done
  name=$(cd "$tb/ort" && ls libonnxruntime.so.*.*)
  ln -s "$name" "$tb/ort/libonnxruntime.so"
  ln -s "$name" "$tb/ort/libonnxruntime.so.1"
  cp -p /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf "$tb/fonts/"
  write_fonts_conf "$tb/fonts/fonts.conf"
  cp -p models/yolov3-tiny-416.onnx models/coco_labels.txt "$tb/models/"
  if [ "$TB_WITH_INT8" = 1 ] && [ -e models/yolov3-tiny-416-int8.onnx ]; then
    cp -p models/yolov3-tiny-416-int8.onnx "$tb/models/"   # the config's int8-onnx-file (network-mode=1)
  fi
  cp -p configs/yolov3_tiny_pgie_config.txt "$tb/configs/"
  ln "$BUNDLE/cache/clip_1080p.mp4" "$tb/media/clip_1080p.mp4" 2>/dev/null || cp -p "$BUNDLE/cache/clip_1080p.mp4" "$tb/media/"
  write_env_sh "$tb/env.sh"
  # The config's relative paths must resolve inside the bundle.
  local key rel
  for key in onnx-file labelfile-path; do
    rel=$(sed -n "s/^$key=//p" "$tb/configs/yolov3_tiny_pgie_config.txt")
    [ -e "$tb/configs/$rel" ] || die "config's $key=$rel does not resolve inside tb/configs/"
  done
}

# Content of the tree, independent of time stamps: what decides whether to re-compress.
tree_manifest() { # $1 = tree root
  (cd "$1" && find tb -mindepth 1 | LC_ALL=C sort | while IFS= read -r f; do
    if [ -L "$f" ]; then printf 'L %s -> %s\n' "$f" "$(readlink "$f")"
    elif [ -d "$f" ]; then printf 'D %s\n' "$f"
    else printf 'F %s %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)"; fi
  done)
}

pieces_ok() { # the pieces listed in piece.sha256 exist and match
  [ -s "$BUNDLE/piece.sha256" ] && [ -s "$BUNDLE/piece.count" ] || return 1
  (cd "$BUNDLE" && grep ' piece\.[0-9]' piece.sha256 | sha256sum -c --quiet --status -) 2>/dev/null
}

# Three parts, so that a call carries only what changed: app.tar.xz (the two stripped binaries,
# ~8 MiB, rebuilt with every code change), base.tar.xz (GStreamer, libraries, ORT's core library,
# the INT8 model, the clip: ~32 MiB, one call) and the pieces (ORT's CUDA provider and the FP32
# model: ~220 MiB, one call per piece).
APP_FILES=(tb/bin/imagedata-multistream tb/bin/tributary-benchmark)
CUDA_FILES=(tb/ort/libonnxruntime_providers_cuda.so tb/models/yolov3-tiny-416.onnx)

split_tree() { # moves the app and CUDA files out of $BUNDLE/tree into tree-app and tree-cuda
  local part f
  for part in app cuda; do rm -rf "$BUNDLE/tree-$part"; done
  for f in "${APP_FILES[@]}"; do
    mkdir -p "$BUNDLE/tree-app/$(dirname "$f")" && mv "$BUNDLE/tree/$f" "$BUNDLE/tree-app/$f"
    strip "$BUNDLE/tree-app/$f"   # symbols are 40 % of the file; not needed to run
  done
  for f in "${CUDA_FILES[@]}"; do mkdir -p "$BUNDLE/tree-cuda/$(dirname "$f")" && mv "$BUNDLE/tree/$f" "$BUNDLE/tree-cuda/$f"; done
}

compress_archive() { # $1 = tree root, $2 = archive; skipped when the tree's manifest is unchanged
  local manifest=$2.manifest
  tree_manifest "$1" > "$manifest.new"
  if cmp -s "$manifest.new" "$manifest" 2>/dev/null && [ -s "$2" ]; then rm -f "$manifest.new"; return; fi
  log "compressing $(basename "$2")"
  tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner -cf - tb | xz -T2 -6 > "$2.tmp"
  mv "$2.tmp" "$2" && mv "$manifest.new" "$manifest"
}

cmd_pack() {
  mkdir -p "$BUNDLE"
  ensure_setup
  build_products
  fetch_ort
  make_clip
  make_long_clip
  log "assembling the tree in $BUNDLE/tree/tb"
  assemble_tree "$BUNDLE/tree"
  split_tree
  compress_archive "$BUNDLE/tree-app" "$BUNDLE/app.tar.xz"
  compress_archive "$BUNDLE/tree" "$BUNDLE/base.tar.xz"
  tree_manifest "$BUNDLE/tree-cuda" > "$BUNDLE/tree.manifest.new"
  if cmp -s "$BUNDLE/tree.manifest.new" "$BUNDLE/tree.manifest" 2>/dev/null && pieces_ok; then
    log "CUDA part unchanged since the last pack; pieces kept"
    rm -f "$BUNDLE/tree.manifest.new"
  else
    log "compressing the CUDA part (tar | xz -T2 -6 | split -b ${PIECE_MIB}M); this takes a few minutes"
    rm -rf "$BUNDLE/out.tmp" && mkdir -p "$BUNDLE/out.tmp"
    tar -C "$BUNDLE/tree-cuda" --sort=name --owner=0 --group=0 --numeric-owner -cf - tb \
      | xz -T2 -6 \
      | split -b "${PIECE_MIB}M" -d -a 2 --numeric-suffixes=1 - "$BUNDLE/out.tmp/piece."
    local n stream
    n=$(find "$BUNDLE/out.tmp" -name "piece.[0-9]*" | wc -l)
    stream=$(cat "$BUNDLE"/out.tmp/piece.[0-9]* | sha256sum | cut -d' ' -f1)
    (cd "$BUNDLE/out.tmp" && { echo "$stream  stream"; sha256sum piece.[0-9]*; } > piece.sha256.tmp && mv piece.sha256.tmp piece.sha256)
    echo "$n" > "$BUNDLE/out.tmp/piece.count"
    rm -f "$BUNDLE"/piece.*
    mv "$BUNDLE"/out.tmp/piece.* "$BUNDLE/"
    rmdir "$BUNDLE/out.tmp"
    mv "$BUNDLE/tree.manifest.new" "$BUNDLE/tree.manifest"
  fi
  report
}

report() {
  local tb=$BUNDLE/tree/tb p total=0 s n
  echo
  echo "== binaries (static Swift stdlib, $SCRATCH)"
  for p in "${PRODUCTS[@]}"; do printf '  %-28s %s (stripped)\n' "bin/$p" "$(mib "$(fsize "$BUNDLE/tree-app/tb/bin/$p")")"; done
  printf '  app.tar.xz %s, base.tar.xz %s\n' "$(mib "$(fsize "$BUNDLE/app.tar.xz")")" "$(mib "$(fsize "$BUNDLE/base.tar.xz")")"
  echo "== onnxruntime-gpu $ORT_VERSION_USED; CUDA provider NEEDED:"
  readelf -d "$BUNDLE/tree-cuda/tb/ort/libonnxruntime_providers_cuda.so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' \
    | grep -E 'cu|nv' | sed 's/^/  /'
  echo "== base tree, uncompressed (du --apparent-size; hard links counted once per folder)"
  for p in bin lib gstreamer-1.0 libexec ort models media fonts configs; do
    printf '  %-16s %s\n' "$p/" "$(mib "$(du -sb --apparent-size "$tb/$p" | cut -f1)")"
  done
  printf '  %-16s %s\n' "total" "$(mib "$(du -sb --apparent-size "$tb" | cut -f1)")"
  echo "== CUDA part (provider + FP32 model) as tar.xz, split into pieces of at most $PIECE_MIB MiB"
  n=$(cat "$BUNDLE/piece.count")
  for p in "$BUNDLE"/piece.[0-9]*; do
    s=$(fsize "$p"); total=$((total + s))
    printf '  %-16s %s\n' "$(basename "$p")" "$(mib "$s")"
  done
  printf '  %-16s %s  (%s pieces; stream sha256 %s)\n' "total" "$(mib "$total")" "$n" \
    "$(awk '$2 == "stream" { print substr($1, 1, 16) }' "$BUNDLE/piece.sha256")"
}

# Compressed size of each part of the packed tree (each part compressed alone: an estimate).
cmd_sizes() {
  local tb=$BUNDLE/tree/tb p
  [ -d "$tb" ] || die "no tree; run pack first"
  for p in bin lib gstreamer-1.0 libexec ort models media fonts configs; do
    printf '  %-16s %s\n' "$p/" "$(mib "$(tar -C "$tb" -cf - "$p" | xz -T2 -6 | wc -c)")"
  done
}

# ================================================================================================
# DEVICE: stage, unpack, shell, check
# ================================================================================================

expected_count() {
  [ -s "$BUNDLE/piece.count" ] || die "$BUNDLE/piece.count not carried (carry .bundle/piece.count and .bundle/piece.sha256 in every call)"
  [ -s "$BUNDLE/piece.sha256" ] || die "$BUNDLE/piece.sha256 not carried"
  cat "$BUNDLE/piece.count"
}
stream_sum() { awk '$2 == "stream" { print $1 }' "$1"; }

cmd_stage() {
  local n piece want have staged=() missing=() i name
  n=$(expected_count)
  mkdir -p "$STAGE"
  # Pieces of another pack are stale: start over.
  if ! cmp -s "$BUNDLE/piece.sha256" "$STAGE/piece.sha256"; then
    rm -f "$STAGE"/piece.*
    cp "$BUNDLE/piece.sha256" "$BUNDLE/piece.count" "$STAGE/"
  fi
  for piece in "$BUNDLE"/piece.[0-9]*; do
    [ -e "$piece" ] || continue
    name=$(basename "$piece")
    want=$(awk -v p="$name" '$2 == p { print $1 }' "$STAGE/piece.sha256")
    [ -n "$want" ] || { log "ignoring $name: not part of this pack"; continue; }
    if [ -e "$STAGE/$name" ]; then continue; fi
    have=$(sha256sum < "$piece" | cut -d' ' -f1)
    if [ "$have" != "$want" ]; then log "ignoring $name: sha256 $have, this pack expects $want"; continue; fi
    cp "$piece" "$STAGE/$name.part" && mv "$STAGE/$name.part" "$STAGE/$name"
    log "staged $name ($(mib "$(fsize "$STAGE/$name")"))"
  done
  for ((i = 1; i <= n; i++)); do
    name=$(printf 'piece.%02d' "$i")
    if [ -e "$STAGE/$name" ]; then staged+=("$name"); else missing+=("$name"); fi
  done
  log "staged in $STAGE: ${#staged[@]} of $n pieces${staged:+ (${staged[*]})}${missing:+; missing: ${missing[*]}}"
  STAGE_COMPLETE=$((${#missing[@]} == 0))
}

xz_decompress() {
  if command -v xz >/dev/null; then xz -d -T0 -c
  else # no xz-utils: Python's lzma
    local py
    py=$(command -v python3 || ls /opt/torch/.venv/bin/python3 2>/dev/null) || die "neither xz nor python3 on this machine"
    "$py" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer, 1 << 20)'
  fi
}

cmd_unpack() {
  local n sum i pieces=() tmp
  n=$(expected_count)
  sum=$(stream_sum "$BUNDLE/piece.sha256")
  if [ "$(cat "$TB_ROOT/tb/.complete" 2>/dev/null)" = "$sum" ]; then
    log "$TB_ROOT/tb is already unpacked (stream ${sum:0:16})"
    return 0
  fi
  cmd_stage
  ((STAGE_COMPLETE)) || die "not every piece is staged yet; stage the missing ones first (calls must follow each other within 30 s)"
  for ((i = 1; i <= n; i++)); do pieces+=("$STAGE/$(printf 'piece.%02d' "$i")"); done
  [ "$(cat "${pieces[@]}" | sha256sum | cut -d' ' -f1)" = "$sum" ] || die "the joined stream does not match its checksum"
  [ -e "$TB_ROOT/tb/.complete-base" ] || die "unpack-base first (carry .bundle/base.tar.xz and .bundle/app.tar.xz)"
  log "unpacking $n pieces into $TB_ROOT/tb"
  cat "${pieces[@]}" | xz_decompress | tar -x -C "$TB_ROOT" --no-same-owner
  echo "$sum" > "$TB_ROOT/tb/.complete"
  rm -f "$STAGE"/piece.[0-9]*
  log "done: $(du -sh "$TB_ROOT/tb" | cut -f1) in $TB_ROOT/tb; now: source $TB_ROOT/tb/env.sh"
}

# DEVICE: base.tar.xz (when carried and new) and app.tar.xz (when carried) into $TB_ROOT/tb.
cmd_unpack_base() {
  local sum
  if [ -e "$BUNDLE/base.tar.xz" ]; then
    sum=$(sha256sum < "$BUNDLE/base.tar.xz" | cut -d' ' -f1)
    if [ "$(cat "$TB_ROOT/tb/.complete-base" 2>/dev/null)" != "$sum" ]; then
      log "unpacking base.tar.xz into $TB_ROOT/tb"
      mkdir -p "$TB_ROOT"
      xz_decompress < "$BUNDLE/base.tar.xz" | tar -x -C "$TB_ROOT" --no-same-owner
      echo "$sum" > "$TB_ROOT/tb/.complete-base"
    fi
  fi
  [ -e "$TB_ROOT/tb/.complete-base" ] || die "base.tar.xz was never carried to this machine"
  if [ -e "$BUNDLE/app.tar.xz" ]; then
    xz_decompress < "$BUNDLE/app.tar.xz" | tar -x -C "$TB_ROOT" --no-same-owner
    log "binaries from app.tar.xz ($(sha256sum < "$BUNDLE/app.tar.xz" | cut -c1-16))"
  fi
  [ -x "$TB_ROOT/tb/bin/tributary-benchmark" ] || die "no binaries yet: carry .bundle/app.tar.xz"
}

cmd_shell() { echo "source $TB_ROOT/tb/env.sh"; }

# DEVICE, after unpack: the GPU benchmark of docs/performance.md — the on-device checks, the table
# (NVDEC ceiling, GPU pipeline, CPU path) and, with several GPUs, the scaling table. Logs in $OUT.
cmd_bench() {
  local tb=$TB_ROOT/tb out=${OUT:-/tmp} gpus clip=media/clip_1080p.mp4 parts=${BENCH_PARTS:-check table multi}
  [ -e "$tb/.complete" ] || die "$tb has no CUDA part yet: unpack first"
  # shellcheck disable=SC1091
  source "$tb/env.sh"
  cd "$tb"
  export TRIBUTARY_KERNEL_CACHE=${TRIBUTARY_KERNEL_CACHE:-/tmp/tb-kernels}
  local b="bin/tributary-benchmark -i $clip --frames 300 --repetitions 3"
  case " $parts " in *" check "*)
    local rc=0
    timeout 150 bin/tributary-benchmark --gpu-check -i "$clip" > "$out/check.log" 2>&1 || rc=$?
    echo "gpu-check rc=$rc"
    grep -E "PASS|FAIL|SKIP|Error" "$out/check.log" || true ;;
  esac
  case " $parts " in *" table "*)
    # K up to where real time breaks (≈ 4.6 k decoded frames/s an H100: about 150 streams at 30).
    # BENCH_TABLE_ARGS: more of the benchmark's options (--batch-size B, --tracker sort, …).
    timeout "${BENCH_TABLE_TIMEOUT:-420}" $b --gpu-table --streams ${BENCH_STREAMS:-1 8 16 32 64 96 128} --cpu-path-max-streams 8 \
      ${BENCH_TABLE_ARGS:-} > "$out/table.log" 2>&1 && echo "gpu-table rc=0" || echo "gpu-table rc=$?"
    grep -v XDG "$out/table.log" | tail -n 11 || true ;;
  esac
  case " $parts " in *" tracker "*)
    # Issue 16's GPU measure: the pipeline's figure at BENCH_TRACKER_STREAMS (default 128) without
    # and with the sort tracker after the detector, one after the other on the same machine.
    local tracker_args
    for tracker_args in "" "--tracker sort"; do
      timeout 280 $b --gpu-table --streams ${BENCH_TRACKER_STREAMS:-128} --cpu-path-max-streams 0 $tracker_args > "$out/tracker-${tracker_args##* }.log" 2>&1 \
        && echo "gpu-table ${tracker_args:-(no tracker)} rc=0" || echo "gpu-table ${tracker_args:-(no tracker)} rc=$?"
      grep "^| [0-9]" "$out/tracker-${tracker_args##* }.log" || true
    done ;;
  esac
  gpus=$(nvidia-smi -L | wc -l)
  case " $parts " in *" multi "*)
    if ((gpus > 1)); then
      # One process for every GPU, and a process per GPU.
      timeout "${BENCH_MULTI_TIMEOUT:-540}" $b --gpu-table --streams 8 --cpu-path-max-streams 0 --gpus $(seq -s ' ' 1 "$gpus") \
        --streams-per-gpu ${BENCH_STREAMS_PER_GPU:-8 16 32} --gpu-processes ${BENCH_GPU_PROCESSES:-one per-gpu} > "$out/multi.log" 2>&1 \
        && echo "multi-GPU rc=0" || echo "multi-GPU rc=$?"
      grep "^|" "$out/multi.log" | tail -n 20 || true
    fi ;;
  esac
  case " $parts " in *" app "*)
    # The app end to end: its exit status after whole runs (no crash at exit), after SIGINT, and
    # --single-output over every GPU into one MP4 that decodes.
    local clips=() i rc=0
    for ((i = 0; i < 8; i++)); do clips+=("$clip"); done
    for ((i = 1; i <= ${BENCH_APP_EOS_RUNS:-3}; i++)); do
      timeout 120 bin/imagedata-multistream -i "${clips[@]}" --device cuda --no-display -s > "$out/app-eos-$i.log" 2>&1 \
        && echo "app, 8 streams to their end: rc=0" || echo "app, 8 streams to their end: rc=$?"
    done
    timeout --preserve-status -s INT 20 bin/imagedata-multistream -i "${clips[@]}" "${clips[@]}" --device cuda --gpus 0 --single-output \
      --file-loop -s -o /tmp/tb-single.mp4 > "$out/app-single.log" 2>&1 || rc=$?
    echo "app, 16 streams, --gpus 0 --single-output, SIGINT at 20 s: rc=$rc (130 expected), MP4 $(stat -c %s /tmp/tb-single.mp4 2>/dev/null) bytes"
    gst-launch-1.0 filesrc location=/tmp/tb-single.mp4 ! qtdemux ! h264parse ! nvh264dec ! fakesink 2>&1 | grep -E "Execution ended|ERROR" || true
    grep -h -E "Error|error|Running on|PERF" "$out"/app-*.log | cut -c1-300 | tail -n 8 || true
  esac
  case " $parts " in *" latency "*)
    # Issue 15's measure: decode → sink latency of streams played in real time, from the
    # pipeline's own histogram. The 75-s clip (`.bundle/clip_1080p_75s.mp4`, carried in this
    # call: docs/gpu-device.md) keeps every stream from looping inside the 60-s window; without
    # it, the 15-s clip.
    local long=$BUNDLE/clip_1080p_75s.mp4
    [ -e "$long" ] || long=$clip
    timeout "${BENCH_LATENCY_TIMEOUT:-540}" bin/tributary-benchmark --latency-seconds "${BENCH_LATENCY_SECONDS:-60}" --latency-device cuda \
      --streams ${BENCH_LATENCY_STREAMS:-1 64 128} -i "$long" > "$out/latency.log" 2>&1 && echo "latency rc=0" || echo "latency rc=$?"
    grep "^|" "$out/latency.log" | tail -n 8 || true
    # BENCH_LATENCY_BATCHES="64 32": the same at BENCH_LATENCY_BATCH_STREAMS (default 128) streams
    # with smaller batches (--batch-size), BENCH_LATENCY_BATCH_SECONDS (default 40) each.
    local batch
    for batch in ${BENCH_LATENCY_BATCHES:-}; do
      timeout 200 bin/tributary-benchmark --latency-seconds "${BENCH_LATENCY_BATCH_SECONDS:-40}" --latency-device cuda --batch-size "$batch" \
        --streams ${BENCH_LATENCY_BATCH_STREAMS:-128} -i "$long" > "$out/latency-b$batch.log" 2>&1 \
        && echo "latency, batch size $batch: rc=0" || echo "latency, batch size $batch: rc=$?"
      grep "^| [0-9]" "$out/latency-b$batch.log" || true
    done ;;
  esac
  case " $parts " in *" soak "*)
    # Issue 18's GPU soak: BENCH_SOAK_STREAMS looping streams on the GPU path for
    # BENCH_SOAK_MINUTES, device memory sampled beside RSS; its verdict and table.
    timeout $((${BENCH_SOAK_MINUTES:-8} * 60 + 120)) bin/tributary-benchmark --soak-device cuda --soak-minutes "${BENCH_SOAK_MINUTES:-8}" \
      --streams "${BENCH_SOAK_STREAMS:-32}" -i "$clip" > "$out/soak.log" 2>&1 && echo "soak rc=0" || echo "soak rc=$?"
    grep -E "^\| (criterion|RSS|GPU|open|frame|run)|^Soak:|^Frames:" "$out/soak.log" || true ;;
  esac
  case " $parts " in *" ppg "*)
    # The app with a process per GPU (BENCH_PPG_STREAMS a GPU, detector on): SIGINT after 25 s
    # reaches every child through the parent; exit 130; each GPU's MP4 decodes.
    local clips=() i rc=0 f per=${BENCH_PPG_STREAMS:-16}
    for ((i = 0; i < per * gpus; i++)); do clips+=("$clip"); done
    rm -f /tmp/tb-ppg*.mp4
    timeout --preserve-status -s INT 25 bin/imagedata-multistream -i "${clips[@]}" --device cuda --gpus 0 --process-per-gpu \
      --file-loop -o /tmp/tb-ppg.mp4 > "$out/app-ppg.log" 2>&1 || rc=$?
    echo "app, $((per * gpus)) streams, --gpus 0 --process-per-gpu, SIGINT at 25 s: rc=$rc (130 expected)"
    for f in /tmp/tb-ppg*.mp4; do
      echo "  $f: $(stat -c %s "$f" 2>/dev/null) bytes; $(gst-launch-1.0 filesrc location="$f" ! qtdemux ! h264parse ! nvh264dec ! fakesink 2>&1 | grep -E "Execution ended|ERROR" | head -n1)"
    done
    # The last **PERF report of each process: summed FPS over its streams.
    awk '/\*\*PERF/ { n = 0; s = 0; first = ""; line = $0
                       if (match(line, /^\[GPU [0-9]+\]/)) first = substr(line, RSTART, RLENGTH)   # a child of --process-per-gpu
                       while (match(line, /\x27: [0-9.]+/)) { s += substr(line, RSTART + 3, RLENGTH - 3); n++; line = substr(line, RSTART + RLENGTH) }
                       last[first] = sprintf("%s: %d streams, %.0f fps", first, n, s) }
         END { for (k in last) print "  last **PERF report of " last[k] }' "$out/app-ppg.log"
    grep -E "Error|error" "$out/app-ppg.log" | head -n 5 || true ;;
  esac
}

# DEVICE, after unpack-base: where the GPU path's time goes at steady state, without the detector
# (so without the CUDA provider's pieces). Each run: the app on K looping copies of the clip for
# DIAG_SECONDS, its **PERF lines (per-stream FPS every 5 s), CPU seconds per thread group from
# /proc between two snapshots, and `nvidia-smi dmon` (SM and NVDEC busy %). Logs in $OUT.
#   bash scripts/device_bundle.sh diag "K GPUS [PROCESSES [APP ARGS]]" ...   (default: the list below)
thread_cpu() { # pid -> lines "name ticks" (utime+stime) for each thread, digits in names folded to N
  local t
  for t in /proc/"$1"/task/*; do
    awk '{ s = $0; sub(/^[0-9]+ \(/, "", s); name = substr(s, 1, index(s, ") ") - 1); rest = substr(s, index(s, ") ") + 2);
           split(rest, f, " "); gsub(/[0-9]+/, "N", name); print name, f[12] + f[13] }' "$t/stat" 2>/dev/null || true
  done  # threads come and go: a vanished one is skipped
}
thread_cpu_delta() { # before-file after-file seconds -> busy cores per thread group (top 12)
  awk -v secs="$3" -v hz="$(getconf CLK_TCK)" 'FNR == NR { b[$1] += $2; next } { a[$1] += $2 }
      END { for (k in a) { d = (a[k] - b[k]) / hz / secs; tot += d; if (d > 0.005) printf "  %-24s %6.2f cores\n", k, d }
            printf "  %-24s %6.2f cores\n", "TOTAL", tot }' "$1" "$2" | sort -k2 -n -r | head -n 14
}
# The NVDEC ceiling at steady state: K branches `filesrc ! qtdemux ! h264parse ! nvh264dec ! fakesink`
# split over G GPUs (each GPU's own nvh264dec), run with the clip once and three times in a row
# (concat); the extra 2 × 450 × K frames over the extra time leave start-up out.
diag_ceiling() { # K G
  local k=$1 g=$2 copies b c dec desc t1 t3 clip=media/clip_1080p.mp4
  for copies in 1 3; do
    desc=
    for ((b = 0; b < k; b++)); do
      dec=nvh264dec; (( b % g )) && dec=nvh264device$(( b % g ))dec
      desc+=" concat name=c$b ! $dec ! fakesink sync=false"
      for ((c = 0; c < copies; c++)); do desc+=" filesrc location=$clip ! qtdemux ! h264parse ! c$b."; done
    done
    # shellcheck disable=SC2086
    t=$(gst-launch-1.0 $desc 2>&1 | sed -n 's/.*Execution ended after \([0-9:.]*\).*/\1/p' | awk -F: '{ print $1 * 3600 + $2 * 60 + $3 }')
    if ((copies == 1)); then t1=$t; else t3=$t; fi
  done
  awk -v k="$k" -v g="$g" -v t1="$t1" -v t3="$t3" 'BEGIN { printf "  NVDEC ceiling K=%d on %d GPU(s): 1 copy %.2f s, 3 copies %.2f s -> steady %.0f fps\n", k, g, t1, t3, (t3 > t1 ? 900 * k / (t3 - t1) : 0) }'
}

cmd_diag() {
  local tb=$TB_ROOT/tb out=${OUT:-/tmp} secs=${DIAG_SECONDS:-24} spec k g procs i p pids dmon clip=media/clip_1080p.mp4
  source "$tb/env.sh"
  cd "$tb"
  export TRIBUTARY_KERNEL_CACHE=${TRIBUTARY_KERNEL_CACHE:-/tmp/tb-kernels}
  gst-inspect-1.0 nvh264dec > /dev/null 2>&1 || die "nvh264dec missing"
  nvidia-smi -L
  local specs=("$@"); ((${#specs[@]})) || specs=("16 1" "32 1" "32 2" "16 2 2")
  # DIAG_DETECTOR=1: with the detector (needs the CUDA provider: after `unpack`, not only unpack-base).
  local detector_flag=--no-detector
  [ "${DIAG_DETECTOR:-0}" = 1 ] && detector_flag=

  if [ -n "${DIAG_CEILING:-}" ]; then for spec in $DIAG_CEILING; do diag_ceiling "${spec%x*}" "${spec#*x}"; done; fi
  for spec in "${specs[@]}"; do
    local extra
    read -r k g procs extra <<< "$spec"; procs=${procs:-1}
    echo "=== K=$k streams, $g GPU(s), $procs process(es) $extra"
    nvidia-smi dmon -s u -d 1 > "$out/dmon-$k-$g-$procs.log" 2>&1 & dmon=$!
    pids=()
    for ((p = 0; p < procs; p++)); do
      local inputs=() n=$((k / procs))
      for ((i = 0; i < n; i++)); do inputs+=("$clip"); done
      # Several processes: one GPU each (CUDA_VISIBLE_DEVICES); one process: --gpus G.
      local scope=() sharding=(--gpus "$g")
      if ((procs > 1)); then scope=(CUDA_VISIBLE_DEVICES="$p"); sharding=(); fi
      # shellcheck disable=SC2086
      env "${scope[@]}" timeout -s INT "$secs" bin/imagedata-multistream -i "${inputs[@]}" --device cuda ${detector_flag} \
        "${sharding[@]}" --file-loop --no-display -s --stage-times $extra > "$out/app-$k-$g-$procs-$p.log" 2>&1 &
      pids+=($!)
    done
    sleep 8
    local pid
    for pid in "${pids[@]}"; do thread_cpu "$(pgrep -P "$pid" | head -n1 || echo "$pid")" > "$out/cpu0-$pid"; done
    sleep 10
    for pid in "${pids[@]}"; do
      thread_cpu "$(pgrep -P "$pid" | head -n1 || echo "$pid")" > "$out/cpu1-$pid"
      echo "  busy cores per thread group, process $pid (t = 8..18 s):"
      thread_cpu_delta "$out/cpu0-$pid" "$out/cpu1-$pid" 10
    done
    wait "${pids[@]}" 2>/dev/null || true
    kill "$dmon" 2>/dev/null || true
    for ((p = 0; p < procs; p++)); do
      # Steady state: the last complete **PERF report(s), summed over streams (and GPUs).
      awk '/\*\*PERF/ { n++; sum[n] = 0; line = $0
                         while (match(line, /\x27: [0-9.]+/)) { sum[n] += substr(line, RSTART + 3, RLENGTH - 3); line = substr(line, RSTART + RLENGTH) } }
           END { printf "  process %d: aggregate FPS per 5 s report:", p; for (i = 1; i <= n; i++) printf " %.0f", sum[i]; print "" }' \
          p="$p" "$out/app-$k-$g-$procs-$p.log"
      sed -n '/^Stage times/,$p' "$out/app-$k-$g-$procs-$p.log" | grep -v "^source " | head -n 24
    done
    echo "  nvidia-smi dmon (gpu sm mem enc dec), median over the run:"
    awk '!/^#/ && NF >= 5 { sm[$1] = sm[$1] " " $2; dec[$1] = dec[$1] " " $5 } END { for (g in sm) print "   gpu " g " sm:" sm[g] " | dec:" dec[g] }' \
      "$out/dmon-$k-$g-$procs.log" | cut -c1-400
  done
  grep -h -m3 -E "Error|error" "$out"/app-*.log || true
}

cmd_check() {
  local tb=$TB_ROOT/tb bad=0 out
  [ -e "$tb/.complete-base" ] || die "$tb is not unpacked"
  # shellcheck disable=SC1091
  source "$tb/env.sh"
  echo "== LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "== TRIBUTARY_NVRTC_LIBRARY=${TRIBUTARY_NVRTC_LIBRARY:-<unset>}"
  echo "== gst-inspect-1.0 nvcodec (the first run scans the plugins into $GST_REGISTRY_1_0)"
  gst-inspect-1.0 nvcodec || bad=1
  if ! gst-inspect-1.0 nvh264dec >/dev/null 2>&1; then
    echo "nvh264dec missing: NVDEC unavailable (libnvcuvid.so.1: $(ldconfig -p | grep -c 'libnvcuvid.so.1') in ldconfig);" \
         "H.264 would decode on the CPU (openh264dec)"
    bad=1
  fi
  echo "== ldd bin/imagedata-multistream: not found"
  out=$(ldd "$tb/bin/imagedata-multistream" | grep "not found" || true); [ -z "$out" ] || { echo "$out"; bad=1; }
  if [ -e "$tb/ort/libonnxruntime_providers_cuda.so" ]; then
    echo "== ldd ort/libonnxruntime_providers_cuda.so: not found"
    out=$(ldd "$tb/ort/libonnxruntime_providers_cuda.so" | grep "not found" || true); [ -z "$out" ] || { echo "$out"; bad=1; }
  fi
  echo "== nvidia-smi -L"
  nvidia-smi -L || bad=1
  echo "== imagedata-multistream --help"
  out=$("$tb/bin/imagedata-multistream" --help 2>&1) || bad=1
  printf '%s\n' "$out" | head -n 12
  if ((bad == 0)); then echo "check: OK"; else echo "check: FAILED" >&2; return 1; fi
}

# ================================================================================================
# HERE: simulate the device side (no GPU): one stage call per piece, then unpack and the checks
# ================================================================================================

cmd_simulate() {
  local sim=${TB_ROOT_SIM:-/tmp/sim} stage=${TB_STAGE_SIM:-/tmp/sim-stage} n i carry
  n=$(cat "$BUNDLE/piece.count")
  rm -rf "$sim" "$stage" && mkdir -p "$sim"
  carry=$(mktemp -d) && mkdir -p "$carry/.bundle"   # the first call: base + app
  cp "$BUNDLE/base.tar.xz" "$BUNDLE/app.tar.xz" "$carry/.bundle/"
  TB_BUNDLE=$carry/.bundle TB_STAGE=$stage TB_ROOT=$sim bash "$0" unpack-base
  rm -rf "$carry"
  for ((i = 1; i <= n; i++)); do   # each call carries one piece + piece.count + piece.sha256
    carry=$(mktemp -d) && mkdir -p "$carry/.bundle"
    cp "$BUNDLE/piece.count" "$BUNDLE/piece.sha256" "$BUNDLE/$(printf 'piece.%02d' "$i")" "$carry/.bundle/"
    if ((i < n)); then TB_BUNDLE=$carry/.bundle TB_STAGE=$stage TB_ROOT=$sim bash "$0" stage
    else TB_BUNDLE=$carry/.bundle TB_STAGE=$stage TB_ROOT=$sim bash "$0" unpack; fi
    rm -rf "$carry"
  done
  TB_BUNDLE=$BUNDLE TB_STAGE=$stage TB_ROOT=$sim bash "$0" unpack   # again: must be a no-op
  diff <(for t in tree tree-app tree-cuda; do (cd "$BUNDLE/$t" && find tb); done | LC_ALL=C sort -u) \
       <(cd "$sim" && find tb ! -name .complete ! -name .complete-base | LC_ALL=C sort) \
    && log "simulate: unpacked tree lists the same files as the packed one"
  echo "== ldd with only tb/lib (+ tb/ort) on LD_LIBRARY_PATH"
  local f bad=0
  local unresolved
  for f in "$sim"/tb/bin/* "$sim"/tb/libexec/* "$sim"/tb/gstreamer-1.0/*.so "$sim"/tb/lib/*.so* "$sim"/tb/ort/*.so*; do
    unresolved=$(LD_LIBRARY_PATH=$sim/tb/lib:$sim/tb/ort ldd "$f" 2>&1 | awk '$3 == "not" { print $1 }' | tr '\n' ' ')
    [ -n "$unresolved" ] || continue
    echo "  ${f#"$sim"/}: not found here: $unresolved"
    # CUDA (the device venv's nvidia/*/lib) and the driver (libcuda) are the device's to provide.
    if [ -n "$(tr ' ' '\n' <<<"$unresolved" | grep -vE '^lib(cuda|cudart|cublas|cublasLt|curand|cufft|cudnn[a-z_]*|nvrtc)\.so' | grep . )" ]; then
      bad=1
    else
      echo "    (CUDA libraries: provided on the device by the venv's nvidia/*/lib and the driver)"
    fi
  done
  LD_LIBRARY_PATH=$sim/tb/lib ldd "$sim/tb/bin/imagedata-multistream" | grep -v "$sim/tb/lib" | sed 's/^/  outside tb\/lib: /'
  (
    # shellcheck disable=SC1091
    source "$sim/tb/env.sh"
    export GST_REGISTRY_1_0=/tmp/sim-registry.bin
    rm -f "$GST_REGISTRY_1_0"
    echo "== gst-inspect-1.0 coreelements (bundled plugins only)"
    "$sim/tb/bin/gst-inspect-1.0" coreelements | grep -E "Filename|Version|elements$"
    echo "== plugins in the registry"
    "$sim/tb/bin/gst-inspect-1.0" | tail -n 1
    "$sim/tb/bin/gst-inspect-1.0" | awk -F: 'NF > 1 { print $1 }' | sort -u | tr '\n' ' '; echo
    "$sim/tb/bin/gst-inspect-1.0" nvcodec | grep -E "Filename|features"
    echo "== gst-launch-1.0 filesrc ! qtdemux ! h264parse ! fakesink"
    "$sim/tb/bin/gst-launch-1.0" filesrc location="$sim/tb/media/clip_1080p.mp4" ! qtdemux ! h264parse ! fakesink
    echo "== fontconfig"
    fc-match "DejaVu Sans" file 2>/dev/null || true
    echo "== imagedata-multistream --help"
    "$sim/tb/bin/imagedata-multistream" --help | head -n 5
  )
  if ((bad == 0)); then log "simulate: OK"; else die "simulate: unresolved libraries"; fi
}

case ${1:-} in
  pack) cmd_pack ;;
  sizes) cmd_sizes ;;
  simulate) cmd_simulate ;;
  stage) cmd_stage ;;
  unpack) cmd_unpack ;;
  unpack-base) cmd_unpack_base ;;
  bench) cmd_bench ;;
  shell) cmd_shell ;;
  check) cmd_check ;;
  diag) shift; cmd_diag "$@" ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2 ;;
esac
