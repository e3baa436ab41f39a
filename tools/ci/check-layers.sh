#!/usr/bin/env bash
# Checks README.md's layer table against the code: for every folder of userspace/, the folders
# its files #include must be exactly the ones its row names. The build refuses an include of a
# folder a library does not link (cmake/SnigateLayers.cmake); this keeps the table, which is
# what a reader trusts, equal to what the build allows.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
status=0
declare -A table
while IFS='|' read -r _ folder deps _; do
  folder=$(echo "$folder" | tr -d ' `')
  table[$folder]=$(echo "$deps" | sed -E 's/\([^)]*\)//g; s/[` ]//g; s/—//' | tr ',' '\n' |
                   sed '/^$/d' | sort | paste -sd,)
done < <(sed -n '/<!-- layers -->/,/<!-- \/layers -->/p' "$root/README.md" | grep -E '^\| `')
for dir in "$root"/userspace/*/; do
  folder=$(basename "$dir")
  used=$( (grep -rhoE '^#include "[a-z_]+/' "$dir" || true) | sed -E 's/#include "([a-z_]+)\//\1/' |
         (grep -vx -e "$folder" -e snigate || true) | sort -u | paste -sd,)
  if [[ -z ${table[$folder]+set} ]]; then
    echo "check-layers: userspace/$folder has no row in README.md's layer table" >&2
    status=1
  elif [[ ${table[$folder]} != "$used" ]]; then
    echo "check-layers: userspace/$folder includes {$used}; README.md's table says {${table[$folder]}}" >&2
    status=1
  fi
done
((status == 0)) && echo "check-layers: README.md's layer table matches the includes of ${#table[@]} folders"
exit $status
