#!/usr/bin/env bash
# Vendors the console's front-end files into src/fazai/web/static/vendor/ from the npm registry.
# Run at development time only (when upgrading a version); the results are committed, so installing
# FazAI needs no npm. `npm pack` fetches the published tarball of an exact version; we keep only the
# file we serve (minified where the package ships one), and record each tarball's integrity hash in VERSIONS.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/fazai/web/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# package@version  file-inside-the-tarball  name-served
files=(
  "htmx.org@2.0.11 package/dist/htmx.min.js htmx.min.js"
  "htmx-ext-sse@2.2.4 package/dist/sse.min.js sse.min.js"
  "@picocss/pico@2.1.1 package/css/pico.classless.min.css pico.classless.min.css"
)
mkdir -p "$dest"
: > "$work/VERSIONS"
for spec in "${files[@]}"; do
  read -r pkg inner name <<<"$spec"
  (cd "$work" && npm pack --silent --json "$pkg" > pack.json)
  tarball=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["filename"])' "$work/pack.json")
  integrity=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$work/pack.json")
  tar -xzf "$work/$tarball" -C "$work" "$inner"
  cp "$work/$inner" "$dest/$name"
  rm -rf "$work/package" "$work/$tarball"
  echo "$name $pkg $integrity" >> "$work/VERSIONS"
done
cp "$work/VERSIONS" "$dest/VERSIONS"
echo "vendored into $dest:"
cat "$dest/VERSIONS"
