#!/usr/bin/env bash
# Makes sure the Fashion-MNIST IDX files are on disk: $FORTIFY_DATA, then Debian's package folder.
# As root with apt, installs Debian's dataset-fashion-mnist; otherwise says exactly what to do.
set -euo pipefail
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
has_all() {
  local dir=$1
  for f in "${files[@]}"; do
    [ -f "$dir/$f.gz" ] || [ -f "$dir/$f" ] || return 1
  done
}
for dir in "${FORTIFY_DATA:-}" "${FORTIFY_DATA:+$FORTIFY_DATA/fashion-mnist}" /usr/share/datasets/fashion-mnist; do
  [ -n "$dir" ] && has_all "$dir" && exit 0
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Fashion-MNIST not found: installing Debian's dataset-fashion-mnist ..."
  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
  has_all /usr/share/datasets/fashion-mnist && exit 0
fi
cat >&2 <<'MSG'
Fashion-MNIST is missing. Do one of:
  - sudo apt-get install dataset-fashion-mnist        (Debian/Ubuntu; files land in /usr/share/datasets/fashion-mnist)
  - put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
    t10k-labels-idx1-ubyte.gz in a folder and export FORTIFY_DATA=that-folder
  - run `fortify data fetch fashion-mnist` to download them (SHA-256 checked)
MSG
exit 1
