#!/usr/bin/env bash
# with-chromium.sh CMD [ARGS...]
#
# Runs CMD with a headless-capable Chromium for the web UI's browser tests
# (internal/ui, driven with chromedp): exports BATON_CHROMIUM=PATH of the
# first of chromium, chromium-browser, google-chrome found on PATH. When none
# is found and this runs as root with apt-get, Debian's chromium package is
# installed. When none can be found or installed, CMD still runs and the
# browser tests skip saying so, unless BATON_REQUIRE_BROWSER is set (CI):
# then this fails. Exits with CMD's exit code.
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

log() { echo "with-chromium: $*" >&2; }

find_chromium() {
	if [ -n "${BATON_CHROMIUM:-}" ] && [ -x "$BATON_CHROMIUM" ]; then
		return 0
	fi
	local name
	for name in chromium chromium-browser google-chrome google-chrome-stable; do
		if command -v "$name" >/dev/null 2>&1; then
			BATON_CHROMIUM=$(command -v "$name")
			return 0
		fi
	done
	return 1
}

if ! find_chromium; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing chromium with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		{ apt-get update -qq && apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
			log "apt-get install chromium failed"
	fi
	if ! find_chromium; then
		if [ -n "${BATON_REQUIRE_BROWSER:-}" ]; then
			log "no Chromium found or installed, and BATON_REQUIRE_BROWSER is set"
			exit 1
		fi
		log "no Chromium found or installed (install Debian's chromium): the browser tests will skip"
		unset BATON_CHROMIUM
		exec "$@"
	fi
fi
export BATON_CHROMIUM
exec "$@"
