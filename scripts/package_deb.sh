#!/usr/bin/env bash
# Builds lookalike's .deb with `cargo deb`, installs it with dpkg, checks that it works, and
# removes it again. Run by a person as root (or with sudo) on Debian or Ubuntu, not by CI: the
# release build takes a long time on a small machine.
#
#   scripts/package_deb.sh            (needs: cargo install cargo-deb;
#                                      apt-get install desktop-file-utils appstream)
#
# It prints the package's size and the files it installs, and fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null || { echo "missing: $1 ($2)" >&2; exit 2; }; }
need cargo-deb "cargo install cargo-deb"
need dpkg "this script is for Debian and Ubuntu"
need desktop-file-validate "apt-get install desktop-file-utils"

deb=$(cargo deb 2>&1 | tee /dev/stderr | grep -E '\.deb$' | tail -n 1)
[ -f "$deb" ] || { echo "cargo deb made no package" >&2; exit 1; }
echo "package: $deb ($(du -h "$deb" | cut -f1), $(stat -c %s "$deb") bytes)"
echo "contents:"
dpkg-deb --contents "$deb" | awk '{print "  " $3 "  " $6}'

package=$(dpkg-deb --field "$deb" Package)
trap 'dpkg -r "$package" >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb"

echo "checks:"
lookalike --version | sed 's/^/  /'
desktop-file-validate /usr/share/applications/io.github.lookalike.desktop
echo "  desktop entry: valid"
for side in 48 128 256; do
    icon=/usr/share/icons/hicolor/${side}x${side}/apps/lookalike.png
    [ -f "$icon" ] || { echo "missing icon $icon" >&2; exit 1; }
done
echo "  icons: 48, 128 and 256 in place"
if command -v appstreamcli >/dev/null; then
    appstreamcli validate --no-net /usr/share/metainfo/io.github.lookalike.metainfo.xml
    echo "  metainfo: valid"
fi
[ -f /usr/share/doc/lookalike/copyright ] && echo "  licence: /usr/share/doc/lookalike/copyright"

dpkg -r "$package"
trap - EXIT
command -v lookalike >/dev/null && { echo "lookalike is still installed after removal" >&2; exit 1; }
echo "removed again: all good"
