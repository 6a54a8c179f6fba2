#!/bin/sh
# scripts/install-deps.sh waits for another apt instead of failing: run with
# stand-ins for dpkg-query (a package is missing), id (root), sleep (no
# wait) and apt-get (the package lists are locked twice, then free; every
# call is recorded), it must retry `update` and pass DPkg::Lock::Timeout to
# both calls. A different apt failure must still fail at once.
set -eu
script=$1/scripts/install-deps.sh
dir=$(mktemp -d /tmp/usersd-deps-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/bin"
cat > "$dir/bin/dpkg-query" <<'SH'
#!/bin/sh
case "$*" in *libmicrohttpd-dev*) exit 1 ;; esac
echo "install ok installed"
SH
printf '#!/bin/sh\necho 0\n' > "$dir/bin/id"
printf '#!/bin/sh\nexit 0\n' > "$dir/bin/sleep"
cat > "$dir/bin/apt-get" <<'SH'
#!/bin/sh
echo "$*" >> "$APT_LOG"
case "$*" in
*update*)
    n=$(grep -c update "$APT_LOG")
    if [ "$APT_MODE" = locked ] && [ "$n" -le 2 ]; then
        echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2
        exit 100
    fi
    [ "$APT_MODE" = broken ] && { echo "E: The repository is not signed." >&2; exit 100; }
    exit 0 ;;
esac
exit 0
SH
chmod +x "$dir/bin/"*
export APT_LOG="$dir/apt.log" PATH="$dir/bin:$PATH"

APT_MODE=locked "$script" 2>"$dir/err" || { cat "$dir/err"; echo "install_deps_test: failed while locked"; exit 1; }
[ "$(grep -c '^-o DPkg::Lock::Timeout=600 update' "$APT_LOG")" = 3 ] ||
    { cat "$APT_LOG"; echo "install_deps_test: update was not retried with the timeout"; exit 1; }
grep -q '^-o DPkg::Lock::Timeout=600 install .*libmicrohttpd-dev' "$APT_LOG" ||
    { cat "$APT_LOG"; echo "install_deps_test: install without the lock timeout"; exit 1; }
grep -q "waiting" "$dir/err" || { cat "$dir/err"; echo "install_deps_test: no word about waiting"; exit 1; }

: > "$APT_LOG"
if APT_MODE=broken "$script" 2>"$dir/err"; then echo "install_deps_test: a broken apt passed"; exit 1; fi
[ "$(grep -c update "$APT_LOG")" = 1 ] || { cat "$APT_LOG"; echo "install_deps_test: retried a non-lock failure"; exit 1; }
grep -q "not signed" "$dir/err" || { cat "$dir/err"; echo "install_deps_test: the reason was lost"; exit 1; }
echo "install_deps_test: ok"
