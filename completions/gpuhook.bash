# bash completion for gpuhook(8): verbs, options, VM names (profiles in /etc/gpuhook/vms and, where
# libvirt answers, defined domains), PCI addresses of display devices, display modes.
# Works with and without the bash-completion package. With --root DIR on the command line, VM
# names and devices come from under DIR, as the command itself would read them.

_gpuhook_verbs="doctor groups ids check plan status restore log setup hook"
_gpuhook_modes="external takeover mux ddc command looking-glass"

# The value of --root on the command line, or "".
_gpuhook_root() {
  local i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case ${COMP_WORDS[i]} in
      --root) printf '%s' "${COMP_WORDS[i + 1]}"; return ;;
      --root=*) printf '%s' "${COMP_WORDS[i]#--root=}"; return ;;
    esac
  done
}

# VMs with a profile; then the domains libvirt knows (read-only, bounded: never hangs the shell).
_gpuhook_vms() {
  local root f uri=qemu:///system i
  root=$(_gpuhook_root)
  for f in "$root"/etc/gpuhook/vms/*.toml; do
    [ -e "$f" ] || continue
    f=${f##*/}
    printf '%s\n' "${f%.toml}"
  done
  [ -n "$root" ] && return
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    [ "${COMP_WORDS[i]}" = --connect ] && uri=${COMP_WORDS[i + 1]}
  done
  if command -v virsh >/dev/null 2>&1; then
    timeout 2 virsh -r -c "$uri" list --all --name 2>/dev/null | sed '/^$/d'
  fi
}

# PCI addresses of display devices (class 03xx).
_gpuhook_gpus() {
  local root d c
  root=$(_gpuhook_root)
  for d in "$root"/sys/bus/pci/devices/*; do
    [ -r "$d/class" ] || continue
    read -r c <"$d/class" || continue
    case $c in 0x03*) printf '%s\n' "${d##*/}" ;; esac
  done
}

_gpuhook() {
  local cur prev verb="" i nargs=0 w
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  # The verb: the first word that is neither an option nor an option's value.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --root | --connect | --xml | --events | --gpu | --mode) ((i++)) ;;
      -*) ;;
      *) if [ -z "$verb" ]; then verb=$w; else ((nargs++)); fi ;;
    esac
  done
  case $prev in
    --root) compopt -o dirnames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --xml) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --connect) COMPREPLY=($(compgen -W "qemu:///system qemu:///session" -- "$cur")); return ;;
    --events) COMPREPLY=($(compgen -W "1 5 10 0" -- "$cur")); return ;;
    --gpu) COMPREPLY=($(compgen -W "$(_gpuhook_gpus)" -- "$cur")); return ;;
    --mode) COMPREPLY=($(compgen -W "$_gpuhook_modes" -- "$cur")); return ;;
  esac
  if [ -z "$verb" ]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "--root --json --help --version" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$_gpuhook_verbs" -- "$cur"))
    fi
    return
  fi
  local opts="--help --json --root"
  case $verb in
    check) opts="$opts --connect --xml" ;;
    restore) opts="$opts --force --all-modules" ;;
    log) opts="$opts --events --follow" ;;
    setup) opts="$opts --gpu --mode --dry-run --yes --connect --undo" ;;
    hook) opts="" ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  [ "$nargs" -gt 0 ] && return
  case $verb in
    ids) COMPREPLY=($(compgen -W "$(_gpuhook_gpus)" -- "$cur")) ;;
    check | plan | restore | log | setup | hook)
      local IFS=$'\n'
      COMPREPLY=($(compgen -W "$(_gpuhook_vms)" -- "$cur")) ;;
  esac
}
complete -F _gpuhook gpuhook
