#!/bin/sh
# Writes the Secrets' env files of an overlay (secrets/*.env, ignored by git) with fresh random
# passwords, the same value wherever two components must share one. Existing files are kept.
#   manifests/make-secrets.sh manifests/overlays/kind
set -eu
overlay=${1:?usage: $0 OVERLAY_DIR (e.g. manifests/overlays/kind)}
dir="$overlay/secrets"
[ -d "$dir" ] || { echo "no $dir: not an overlay" >&2; exit 2; }
for f in sources ingestion processing warehouse lake; do
  if [ -e "$dir/$f.env" ]; then
    echo "$dir/$f.env exists: keeping every file as it is" >&2
    exit 0
  fi
done
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
umask 077
crm=$(random); fleet=$(random); warehouse=$(random); access=cdc-chaos-$(random | cut -c1-8); secret=$(random)
printf 'postgres-password=%s\ncdc-password=%s\nmariadb-root-password=%s\nmariadb-cdc-password=%s\n' "$(random)" "$crm" "$(random)" "$fleet" > "$dir/sources.env"
printf 'crm-password=%s\nfleet-password=%s\n' "$crm" "$fleet" > "$dir/ingestion.env"
printf 'warehouse-password=%s\nlake-access-key=%s\nlake-secret-key=%s\n' "$warehouse" "$access" "$secret" > "$dir/processing.env"
printf 'postgres-password=%s\n' "$warehouse" > "$dir/warehouse.env"
printf 'access-key=%s\nsecret-key=%s\n' "$access" "$secret" > "$dir/lake.env"
echo "wrote $dir/{sources,ingestion,processing,warehouse,lake}.env"
