#!/bin/sh
# Fill fuzz/seeds/<target>/ from the shared corpus (never committed: seeds/ is git-ignored).
# The targets take a selector byte first; seeds are the raw files behind selector 0.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus=${RESEAL_CORPUS:-$here/../../shared/corpus}
mkdir -p "$here/seeds/vhd" "$here/seeds/vhdx"
seed() { # target name command...
  t=$1; n=$2; shift 2
  { printf '\000'; "$@"; } > "$here/seeds/$t/$n"
}
seed vhd dfvfs-ext2 cat "$corpus/dfvfs/ext2.vhd"
seed vhd dfvfs-image cat "$corpus/dfvfs/image.vhd"
seed vhd dfvfs-image-differential cat "$corpus/dfvfs/image-differential.vhd"
seed vhd dfvfs-fat-differential cat "$corpus/dfvfs/fat-differential.vhd"
seed vhd dissect-dynamic gzip -dc "$corpus/dissect.hypervisor/dynamic.vhd.gz"
seed vhdx dissect-fixed gzip -dc "$corpus/dissect.hypervisor/fixed.vhdx.gz"
seed vhdx velociraptor-test xz -dc "$corpus/velociraptor/test.vhdx.xz"
# Mutation-mode seeds (selector 1: template with no patches).
printf '\001\000\000\000\000' > "$here/seeds/vhd/template-dynamic"
printf '\002\000\000\000\000' > "$here/seeds/vhd/template-fixed"
printf '\001\000\000\000\000' > "$here/seeds/vhdx/template"
# Whole-volume target: a fresh mkntfs volume as the template (the target adds files itself);
# inputs are patch lists, so the seeds are tiny.
mkdir -p "$here/seeds/ntfs_volume"
if command -v mkntfs >/dev/null 2>&1; then
  if [ ! -s "$here/seeds/ntfs_volume.template" ]; then
    truncate -s 4M "$here/seeds/ntfs_volume.template"
    mkntfs -q -F -f -s 512 -c 4096 -L fuzz "$here/seeds/ntfs_volume.template" >/dev/null 2>&1
  fi
else
  echo "make-seeds.sh: mkntfs (ntfs-3g) missing; ntfs_volume has no template" >&2
fi
printf '\000\001\002\003\030\012' > "$here/seeds/ntfs_volume/write"
printf '\001\001\040\000\377\000\000\000' > "$here/seeds/ntfs_volume/mft-patch"
