#!/bin/sh
# Paddock's demo workload (image label "hello", imported by `paddock up`): prints the job's
# parameters and exits 0. Secret parameters (files of mode 0600) are shown by name only.
echo "hello from Paddock job $PADDOCK_JOB_ID"
for f in "$PADDOCK_PARAMETERS_DIR"/*; do
    [ -f "$f" ] || continue
    name=${f##*/}
    if [ -n "$(find "$f" -perm -004)" ]; then
        echo "$name=$(cat "$f")"
    else
        echo "$name=<secret, $(wc -c < "$f" | tr -d ' ') bytes>"
    fi
done
