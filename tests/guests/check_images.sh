#!/bin/bash
# Usage: check_images.sh READELF FILE...
# Checks each guest image against the boot contract (README.md): NAME.elf is an ELF64 x86-64
# ET_EXEC whose PT_LOAD segments all lie at or above 1 MiB with p_paddr == p_vaddr and whose
# entry point is inside one of them; NAME.mb.elf is an ELF32 i386 file with a valid Multiboot 1
# header (magic, flags, checksum summing to 0) 4-byte aligned in its first 8 KiB, and PT_LOAD
# segments at or above 1 MiB. Exit 1 if any check fails, 2 on usage errors.
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 READELF FILE..." >&2
  exit 2
fi
readelf=$1
shift
status=0
bad() {
  echo "$f: $*" >&2
  echo "image check failed: $f"
  status=1
}
for f in "$@"; do
  hdr=$("$readelf" -h "$f" 2>&1) || { echo "$f: readelf failed" >&2; exit 2; }
  class=$(awk -F: '/Class:/ {gsub(/ /, "", $2); print $2}' <<< "$hdr")
  machine=$(awk -F: '/Machine:/ {sub(/^ +/, "", $2); print $2}' <<< "$hdr")
  type=$(awk -F: '/Type:/ {sub(/^ +/, "", $2); print $2}' <<< "$hdr")
  entry=$(awk -F: '/Entry point address:/ {gsub(/ /, "", $2); print $2}' <<< "$hdr")
  case $f in
    *.mb.elf)
      [ "$class" = ELF32 ] || bad "class $class, want ELF32"
      [ "$machine" = "Intel 80386" ] || bad "machine $machine, want Intel 80386"
      # Multiboot header: first 0x1BADB002 at a 4-byte aligned offset below 8 KiB.
      found=0
      while read -r off magic flags sum; do
        [ "$magic" = 1badb002 ] || continue
        total=$(( (0x$magic + 0x$flags + 0x$sum) & 0xffffffff ))
        if [ $((off % 4)) -eq 0 ] && [ $total -eq 0 ]; then found=1; break; fi
      done < <(od -A d -t x4 -w12 -v -N 8192 "$f" | awk 'NF == 4' ;
               od -A d -t x4 -w12 -v -j 4 -N 8188 "$f" | awk 'NF == 4 {print $1 + 4, $2, $3, $4}' ;
               od -A d -t x4 -w12 -v -j 8 -N 8184 "$f" | awk 'NF == 4 {print $1 + 8, $2, $3, $4}')
      [ $found -eq 1 ] || bad "no valid Multiboot 1 header in the first 8 KiB"
      ;;
    *)
      [ "$class" = ELF64 ] || bad "class $class, want ELF64"
      [ "$machine" = "Advanced Micro Devices X86-64" ] || bad "machine $machine, want x86-64"
      ;;
  esac
  [[ "$type" == EXEC* ]] || bad "type $type, want EXEC"
  in_load=0
  loads=0
  while read -r vaddr paddr memsz; do
    loads=$((loads + 1))
    [ $((vaddr)) -ge $((0x100000)) ] || bad "PT_LOAD at $vaddr below 1 MiB"
    [ $((vaddr)) -eq $((paddr)) ] || bad "PT_LOAD p_vaddr $vaddr != p_paddr $paddr"
    if [ $((entry)) -ge $((vaddr)) ] && [ $((entry)) -lt $((vaddr + memsz)) ]; then in_load=1; fi
  done < <("$readelf" -lW "$f" | awk '$1 == "LOAD" {print $3, $4, $6}')
  [ $loads -gt 0 ] || bad "no PT_LOAD segment"
  [ $in_load -eq 1 ] || bad "entry $entry outside every PT_LOAD segment"
done
exit $status
