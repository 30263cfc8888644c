#!/usr/bin/env bash
# ui-assets.sh: refreshes the web UI's vendored JavaScript (make ui-assets).
#
# For each pinned package below, `npm pack`s it from the npm registry into a
# temporary directory and copies its distributed files (the .js files of one
# directory of the package, or the files listed, unchanged) and its licence into
# internal/ui/static/vendor/NAME/, then rewrites
# internal/ui/static/vendor/VERSIONS.md (name, version, licence, source,
# the tarball's SHA-256). The files are committed: `go build` embeds them and
# never needs Node or the network. Needs npm, tar, sha256sum. Refuses
# copyleft licences (only MIT, ISC, BSD-2/3-Clause, 0BSD, Apache-2.0).
set -euo pipefail
cd "$(dirname "$0")/.."

# name@version  directory of the package to copy  vendor directory name
# [the files of that directory to copy; default *.js]
PACKAGES=(
	"@cfworker/json-schema@4.1.6 dist/esm cfworker-json-schema"
	"@dagrejs/dagre@3.1.3 dist dagre dagre.esm.js"
	"uplot@1.6.32 dist uplot uPlot.esm.js uPlot.min.css"
)

VENDOR=internal/ui/static/vendor
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
command -v npm >/dev/null || { echo "ui-assets: npm not found (only this refresh needs it)" >&2; exit 1; }

rm -rf "$VENDOR"
mkdir -p "$VENDOR"
{
	echo "# Vendored JavaScript of the web UI"
	echo
	echo "Written by scripts/ui-assets.sh (make ui-assets) from the npm registry; do not edit by hand."
	echo
	echo "| Name | Version | Licence | Source | Files | SHA-256 of the tarball |"
	echo "|------|---------|---------|--------|-------|------------------------|"
} >"$TMP/VERSIONS.md"

for entry in "${PACKAGES[@]}"; do
	read -r spec dir name files <<<"$entry"
	files=${files:-*.js}
	pkg=${spec%@*}
	version=${spec##*@}
	work="$TMP/$name"
	mkdir -p "$work"
	(cd "$work" && npm pack --silent "$spec" >/dev/null)
	tgz=$(ls "$work"/*.tgz)
	sum=$(sha256sum "$tgz" | cut -d' ' -f1)
	tar -xzf "$tgz" -C "$work"
	license=$(node -p "require('$work/package/package.json').license" 2>/dev/null ||
		sed -n 's/.*"license": *"\([^"]*\)".*/\1/p' "$work/package/package.json" | head -1)
	case "$license" in
	MIT | ISC | BSD-2-Clause | BSD-3-Clause | 0BSD | Apache-2.0) ;;
	*) echo "ui-assets: $spec has licence '$license', not an accepted permissive one" >&2; exit 1 ;;
	esac
	dest="$VENDOR/$name"
	mkdir -p "$dest"
	# shellcheck disable=SC2086 # $files is a glob on purpose
	(cd "$work/package/$dir" && cp $files "$OLDPWD/$dest/")
	lic=$(ls "$work/package" | grep -i -E '^(licen[cs]e|copying)' | head -1 || true)
	if [ -n "$lic" ]; then
		cp "$work/package/$lic" "$dest/LICENSE"
	else
		# The package ships no licence file: record the licence it declares,
		# with the standard text of that licence for MIT.
		author=$(node -p "const p=require('$work/package/package.json'); typeof p.author==='string'?p.author:(p.author&&p.author.name)||p.name" 2>/dev/null || echo "$pkg authors")
		{
			echo "$pkg $version declares the licence $license in its package.json and ships no licence file."
			if [ "$license" = MIT ]; then
				echo
				echo "MIT License"
				echo
				echo "Copyright (c) $author"
				echo
				echo "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files (the \"Software\"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the following conditions:"
				echo
				echo "The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software."
				echo
				echo "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE."
			fi
		} >"$dest/LICENSE"
	fi
	copied=$(cd "$dest" && ls | tr '\n' ' ')
	echo "| $pkg | $version | $license | npm registry, \`npm pack $spec\` (\`$dir\`) | $copied| \`$sum\` |" >>"$TMP/VERSIONS.md"
	echo "ui-assets: $spec -> $dest" >&2
done
cp "$TMP/VERSIONS.md" "$VENDOR/VERSIONS.md"
