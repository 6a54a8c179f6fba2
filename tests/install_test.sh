#!/bin/sh
# `make install` into a temporary prefix, then build and run the examples/
# program against the installed library through pkg-config, as another C
# program would. Checks that libusersd.so exports only usersd_* symbols.
#   install_test.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
set -eu
build=$1
src=$2
extra=${3:-}
prefix=$(mktemp -d /tmp/usersd-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
lib=$(ls -d "$prefix"/lib*/libusersd.so.0 | head -n 1)
libdir=$(dirname "$lib")
for f in "$prefix/bin/usersd" "$prefix/include/usersd.h" "$libdir/pkgconfig/usersd.pc" \
         "$prefix/share/man/man1/usersd.1" "$prefix/lib/systemd/system/usersd.service"; do
    [ -e "$f" ] || { echo "install_test: missing $f" >&2; exit 1; }
done
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = "libusersd.so.0" ] || { echo "install_test: soname is '$soname'" >&2; exit 1; }
leaked=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^usersd_' || true)
[ -z "$leaked" ] || { echo "install_test: exported beyond usersd_*: $leaked" >&2; exit 1; }
man -l "$prefix/share/man/man1/usersd.1" >/dev/null 2>&1 || groff -man -Tutf8 "$prefix/share/man/man1/usersd.1" >/dev/null 2>&1 || true
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc $extra -o "$prefix/example" "$src/examples/backend_integration.c" $(pkg-config --cflags --libs usersd)
LD_LIBRARY_PATH="$libdir" "$prefix/example" "sqlite:$prefix/example.db"
"$prefix/bin/usersd" --version
echo "install_test: ok"
