# zsh-complete.zsh COMPLETIONS_DIR "LINE": types LINE and Tab into an interactive zsh (in a pty,
# zsh/zpty) with COMPLETIONS_DIR in fpath and compinit loaded, and prints what the terminal shows
# afterwards, escape sequences removed: the completed line, and the list of candidates when there
# is more than one (LIST_AMBIGUOUS off: listed at the first Tab even when a prefix is inserted).
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D; PS1='%% '; unsetopt LIST_AMBIGUOUS"
zpty -w -n z "$2"$'\t'
# Read until the Tab's output has settled: something after the typed line, then 0.3 s of quiet
# (at most 10 s).
local acc= chunk
integer i quiet=0
for (( i = 0; i < 200 && quiet < 6; i++ )); do
  sleep 0.05
  if zpty -r -t z chunk 2>/dev/null; then
    acc+=$chunk
    while zpty -r -t z chunk 2>/dev/null; do acc+=$chunk; done
    quiet=0
  elif [[ $acc == *"$2"* ]]; then
    (( quiet++ ))
  fi
done
zpty -d z
# Only what follows the last prompt ("% "): the line as completed, and any listing under it.
acc=${acc##*% }
print -r -- "$acc" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/[[:cntrl:]]//g'
