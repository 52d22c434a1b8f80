# fish completion for gpuhook(8): verbs, options, VM names (profiles and libvirt's domains), PCI
# addresses of display devices, display modes. --root DIR on the line is honoured.

function __gpuhook_root
    set -l words (commandline -opc)
    for i in (seq 2 (count $words))
        if test "$words[$i]" = --root; and test $i -lt (count $words)
            echo $words[(math $i + 1)]
            return
        else if string match -q -- '--root=*' $words[$i]
            string replace -- '--root=' '' $words[$i]
            return
        end
    end
end

function __gpuhook_vms
    set -l root (__gpuhook_root)
    for f in $root/etc/gpuhook/vms/*.toml
        basename $f .toml
    end
    if test -z "$root"; and command -q virsh
        timeout 2 virsh -r -c qemu:///system list --all --name 2>/dev/null | string match -v ''
    end
end

function __gpuhook_gpus
    set -l root (__gpuhook_root)
    for d in $root/sys/bus/pci/devices/*
        if test -r $d/class; and string match -q '0x03*' (cat $d/class)
            basename $d
        end
    end
end

set -l __gpuhook_verbs doctor groups ids check plan status restore log setup hook

complete -c gpuhook -f
complete -c gpuhook -l root -r -a '(__fish_complete_directories)' -d 'read the host tree under DIR'
complete -c gpuhook -l json -d 'machine-readable output'
complete -c gpuhook -l help -s h -d 'usage'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -l version -s V -d 'version'

complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a doctor -d 'check the host for GPU passthrough'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a groups -d 'list the IOMMU groups'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a ids -d 'ids of a PCI device'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a check -d 'check a VM profile'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a plan -d 'the steps a prepare would take'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a status -d 'what each VM holds'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a restore -d 'undo a VM journal by hand'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a log -d 'what happened, event by event'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a setup -d 'set a VM up for passthrough'
complete -c gpuhook -n "not __fish_seen_subcommand_from $__gpuhook_verbs" -a hook -d 'run the hook path by hand'

complete -c gpuhook -n '__fish_seen_subcommand_from ids' -a '(__gpuhook_gpus)' -d 'display device'
complete -c gpuhook -n '__fish_seen_subcommand_from check plan restore log setup hook' -a '(__gpuhook_vms)' -d VM
complete -c gpuhook -n '__fish_seen_subcommand_from check setup' -l connect -x -a 'qemu:///system qemu:///session' -d 'libvirt URI'
complete -c gpuhook -n '__fish_seen_subcommand_from check' -l xml -r -F -d 'domain XML file'
complete -c gpuhook -n '__fish_seen_subcommand_from restore' -l force -d 'restore while a process holds the GPU'
complete -c gpuhook -n '__fish_seen_subcommand_from restore' -l all-modules -d 'also unload the modules gpuhook kept loaded'
complete -c gpuhook -n '__fish_seen_subcommand_from log' -l events -x -a '1 5 10 0' -d 'how many events'
complete -c gpuhook -n '__fish_seen_subcommand_from log' -l follow -d 'wait for new lines'
complete -c gpuhook -n '__fish_seen_subcommand_from setup' -l gpu -x -a '(__gpuhook_gpus)' -d 'the GPU'
complete -c gpuhook -n '__fish_seen_subcommand_from setup' -l mode -x -a 'external takeover mux ddc command looking-glass' -d 'display mode'
complete -c gpuhook -n '__fish_seen_subcommand_from setup' -l dry-run -d 'show, change nothing'
complete -c gpuhook -n '__fish_seen_subcommand_from setup' -l yes -d 'do not ask'
complete -c gpuhook -n '__fish_seen_subcommand_from setup' -l undo -d 'undo a setup'
