#!/bin/bash
# The shell completions (completions/), driven the way the shells drive them.
#   bash: the completion function _gpuhook with COMP_WORDS/COMP_CWORD set as readline sets them
#         (without and with the bash-completion package loaded first);
#   fish: `complete -C "<command line>"`, fish's own completion engine;
#   zsh:  an interactive zsh in a pseudo-terminal (zsh/zpty) with compinit, a line and a Tab.
# VM names come from profiles under --root DIR, display devices from DIR/sys/bus/pci/devices.
# Usage: completions.sh SOURCE_DIR
set -u
SRC=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
mkdir -p "$T/etc/gpuhook/vms" "$T/sys/bus/pci/devices/0000:01:00.0" "$T/sys/bus/pci/devices/0000:01:00.1" \
  "$T/sys/bus/pci/devices/0000:00:02.0" "$T/sys/bus/pci/devices/0000:3b:00.0"
touch "$T/etc/gpuhook/vms/win11.toml" "$T/etc/gpuhook/vms/linux.toml" "$T/etc/gpuhook/vms/notes.txt"
echo 0x030000 >"$T/sys/bus/pci/devices/0000:01:00.0/class"   # the dGPU
echo 0x040300 >"$T/sys/bus/pci/devices/0000:01:00.1/class"   # its HDMI audio: not a display device
echo 0x038000 >"$T/sys/bus/pci/devices/0000:00:02.0/class"   # a Display controller (AMD laptop dGPUs)
echo 0x028000 >"$T/sys/bus/pci/devices/0000:3b:00.0/class"   # Wi-Fi

# bash_complete "LINE": what bash offers at the end of LINE (a trailing space starts a new word).
bash_complete() {
  bash -c '
    [ "$2" = with ] && [ -f /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion
    . "$1"
    read -ra COMP_WORDS <<<"$3"
    case "$3" in *" ") COMP_WORDS+=("") ;; esac
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE=$3 COMP_POINT=${#3}
    _gpuhook gpuhook "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    [ ${#COMPREPLY[@]} = 0 ] || printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort | tr "\n" " "
  ' _ "$SRC/completions/gpuhook.bash" "$MODE" "$1"
}
expect() {  # expect SHELL "LINE" "EXPECTED (sorted, space-separated)"
  local got
  case $1 in
    bash) got=$(bash_complete "$2") ;;
    fish) got=$(fish --no-config -c "source '$SRC/completions/gpuhook.fish'; complete -C '$2'" | cut -f1 | LC_ALL=C sort | tr '\n' ' ') ;;
  esac
  [ "$got" = "$3" ] || fail "$1${MODE:+ ($MODE bash-completion)}: '$2' completes to '$got', expected '$3'"
}

for MODE in without with; do
  expect bash "gpuhook ch" "check "
  expect bash "gpuhook " "check doctor groups hook ids log plan restore setup status "
  expect bash "gpuhook --root $T check " "linux win11 "
  expect bash "gpuhook --root $T check w" "win11 "
  expect bash "gpuhook --root $T check win11 " ""
  expect bash "gpuhook --root $T log " "linux win11 "
  expect bash "gpuhook --root $T restore --force l" "linux "
  expect bash "gpuhook --root $T ids " "0000:00:02.0 0000:01:00.0 "
  expect bash "gpuhook --root $T setup win11 --gpu " "0000:00:02.0 0000:01:00.0 "
  expect bash "gpuhook setup win11 --mode " "command ddc external looking-glass mux takeover "
  expect bash "gpuhook log --" "--events --follow --help --json --root "
  expect bash "gpuhook check win11 --" "--connect --help --json --root --xml "
  expect bash "gpuhook setup x --" "--connect --dry-run --gpu --help --json --mode --root --undo --yes "
  expect bash "gpuhook --" "--help --json --root --version "
done
MODE=
if command -v fish >/dev/null 2>&1; then
  expect fish "gpuhook ch" "check "
  expect fish "gpuhook --root $T check " "linux win11 "
  expect fish "gpuhook --root $T ids " "0000:00:02.0 0000:01:00.0 "
  expect fish "gpuhook setup win11 --mode " "command ddc external looking-glass mux takeover "
  expect fish "gpuhook log --f" "--follow "
else
  fail "fish is not installed (tests/run.sh installs it)"
fi
# zsh: an interactive zsh in a pty (zsh/zpty), compinit, then the line and a Tab; what the terminal
# shows must hold the completed word, or every expected candidate and no unexpected one.
zsh_expect() {  # zsh_expect "LINE" "WORDS THAT MUST SHOW" ["WORDS THAT MUST NOT"]
  local got w
  got=$(timeout 30 zsh -f "$SRC/tests/completions/zsh-complete.zsh" "$SRC/completions" "$1")
  for w in $2; do grep -qF -- "$w" <<<"$got" || fail "zsh: '$1<Tab>' does not show '$w': '$got'"; done
  for w in ${3:-}; do grep -qF -- "$w" <<<"$got" && fail "zsh: '$1<Tab>' shows '$w': '$got'"; done
}
if command -v zsh >/dev/null 2>&1; then
  zsh -n "$SRC/completions/_gpuhook" || fail "zsh: _gpuhook does not parse"
  zsh_expect "gpuhook ch" "check"
  zsh_expect "gpuhook --root $T check " "linux win11" "notes"
  zsh_expect "gpuhook --root $T ids " "0000:00:02.0 0000:01:00.0" "0000:01:00.1 0000:3b:00.0"
  zsh_expect "gpuhook setup x --mode " "external takeover mux ddc command looking-glass"
else
  fail "zsh is not installed (tests/run.sh installs it)"
fi
head -1 "$SRC/completions/_gpuhook" | grep -qx '#compdef gpuhook' || fail "zsh: _gpuhook lacks its #compdef line"
# Every verb the program knows is completed (the CLI's own list, from --help).
if [ -n "${2:-}" ]; then
  for v in $("$2" --help | sed -n '/^verbs:/,/^$/p' | awk 'NR>1 && NF {print $1}'); do
    grep -q "\b$v\b" "$SRC/completions/gpuhook.bash" || fail "bash: verb $v is not completed"
    grep -q -- "-a $v " "$SRC/completions/gpuhook.fish" || fail "fish: verb $v is not completed"
    grep -q "'$v:" "$SRC/completions/_gpuhook" || fail "zsh: verb $v is not completed"
  done
fi
[ "$fails" = 0 ] && echo "completions: PASS" || { echo "completions: $fails failure(s)"; exit 1; }
