#!/bin/bash
# Lab self-test: --media-size SIZE gives a /media disk of that size ($1).
set -euo pipefail
want=$(numfmt --from=iec "$1")
dev=$(findmnt -n -o SOURCE /media)
have=$(blockdev --getsize64 "$dev")
echo "/media is on $dev, $have bytes"
[[ $have == "$want" ]]
echo "media ok"
