# Install test (i), and the shared build: an empty hooks directory. install.sh builds the release
# binary (into build-release, which the other install tests then reuse), installs it under
# --prefix, links <hooks>/qemu to it, creates /etc/gpuhook and /etc/gpuhook/vms (root, 0755) and
# records it all in the manifest. The link works as libvirt's hook.
. "$(dirname "$SCENARIO")/lib-install.sh"
mkdir -p "$HOOKS"
t=$(date +%s)
run_install
echo "install (with build) took $(($(date +%s) - t)) s"
[ -x "$BIN" ] || fail "no executable $BIN after install:
$out"
expect_contains "$("$BIN" --version)" "gpuhook " "$BIN --version"
[ -L "$HOOKS/qemu" ] || fail "$HOOKS/qemu is not a link: $(ls -la "$HOOKS")"
expect_eq "$(readlink "$HOOKS/qemu")" "$BIN" "$HOOKS/qemu points at the installed binary"
[ ! -e "$HOOKS/qemu.d" ] || fail "qemu.d created although hooks/qemu was free"
ok "hooks/qemu -> $BIN"
for d in /etc/gpuhook /etc/gpuhook/vms; do
  expect_eq "$(stat -c '%F %U:%G %a' $d 2>&1)" "directory root:root 755" "$d"
done
manifest=$(cat "$MAN/install-manifest")
expect_contains "$manifest" "file $BIN" "manifest"
expect_contains "$manifest" "link $HOOKS/qemu" "manifest"
expect_contains "$manifest" "dir /etc/gpuhook/vms" "manifest"
ok "config dirs and manifest"
# The man pages and the shell completions, where man and the shells look under a prefix.
for f in share/man/man8/gpuhook.8 share/man/man5/gpuhook.toml.5 share/bash-completion/completions/gpuhook \
  share/zsh/site-functions/_gpuhook share/fish/vendor_completions.d/gpuhook.fish; do
  [ -s "$PREFIX/$f" ] || fail "install.sh did not install $PREFIX/$f"
done
expect_contains "$(MANPATH="$PREFIX/share/man" LC_ALL=C MANWIDTH=80 man gpuhook.toml 2>&1)" "unload_modules" "man gpuhook.toml from the prefix"
ok "man pages and completions installed"
expect_silent_hook "$HOOKS/qemu"
ok "the installed link runs as libvirt's hook"
