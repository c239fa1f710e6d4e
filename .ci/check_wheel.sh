#!/usr/bin/env bash
# The package as a user gets it from pip: build the wheel, install it without dependencies into a
# folder of its own (the checkout's .venv provides torch and the rest), then from an empty folder
# start every console script, train one short epoch on the demo and predict with the checkpoint.
# Fails on the first failing step, and when Python imports the checkout's vidlearn (the editable
# install) instead of the wheel's. Run from anywhere: bash .ci/check_wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=$PWD/.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Build from a copy of what a clone holds (tracked files and new ones git does not ignore), so a
# stale build/ folder in the checkout cannot slip old files into the wheel.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --files-from=- --ignore-failed-read -cf - | tar -xf - -C "$work/src"
"$python" -m pip wheel "$work/src" --no-deps --quiet --wheel-dir "$work/dist"
"$python" -m pip install --no-deps --quiet --target "$work/site" "$work"/dist/vidlearn-*.whl
mkdir "$work/empty"
cd "$work/empty"
export PYTHONPATH="$work/site" VIDLEARN_CACHE="$work/cache"
bin=$work/site/bin

imported=$("$python" -c 'import vidlearn; print(vidlearn.__file__)')
if [ "$imported" != "$work/site/vidlearn/__init__.py" ]; then
  echo "wheel check: vidlearn was imported from $imported, not from the wheel in $work/site" >&2
  exit 1
fi

# Every Hydra entry point composes its primary config from the installed package.
for script in demo eval predict export stats cache; do
  "$bin/vidlearn-$script" --cfg job >/dev/null
done
"$bin/vidlearn-manifest" --help >/dev/null

"$bin/vidlearn-train" hydra.run.dir=run trainer.max_epochs=1 +trainer.limit_train_batches=2 \
  +trainer.limit_val_batches=2 data.num_workers=0 test=false
video=$(find "$work/cache" -name '*.mp4' -print -quit)
"$bin/vidlearn-predict" ckpt=run/checkpoints/last.ckpt input="$video" out=preds.csv progress=false
grep -q "$(basename "$video")" preds.csv
echo "wheel check: the wheel installs, every console script starts, one epoch trains from $PWD"
