#!/usr/bin/env bash
# make demo: a service jail with a web server, from host programs, then gone.
set -euo pipefail
# the checkout's own commands (make dev builds them), whatever is installed
PATH=$(cd "$(dirname "$0")/.." && pwd)/.venv/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
BASE=/var/lib/linjail-demo          # mode 0700: jails live under a root-only directory
ROOT=$BASE/www
IP4=198.51.100.80
IP6=2001:db8::80
JID=""

cleanup() {
    [ -n "$JID" ] && jailctl remove "$JID" 2>/dev/null || true
    rm -rf "$BASE"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

rm -rf "$BASE"
say jailctl build $ROOT --service /bin/sh /usr/bin/busybox
jailctl build "$ROOT" --service /bin/sh /usr/bin/busybox
mkdir -p "$ROOT/var/www"
echo "Hello from the jail www.example.org" > "$ROOT/var/www/index.html"

say jail -i $ROOT www.example.org $IP4,$IP6 /bin/sh -c "busybox httpd -p 80 -h /var/www"
JID=$(jail -i "$ROOT" www.example.org "$IP4,$IP6" /bin/sh -c "busybox httpd -p 80 -h /var/www")
echo "$JID"

say jls
jls

say jexec $JID /bin/sh -c "busybox hostname; busybox ps"
jexec "$JID" /bin/sh -c "busybox hostname; busybox ps"

# SPEC §10: only send to the jail after checking the route is the jail's own veth
for ip in $IP4 $IP6; do
    ip route get "$ip" | grep -q " dev ljh$JID " || { echo "route to $ip is not the jail's"; exit 1; }
done
say curl http://$IP4/
curl -sS --max-time 5 "http://$IP4/"
say curl "http://[$IP6]/"
curl -sS --max-time 5 "http://[$IP6]/"

say "ip route get 192.0.2.1 from $IP4 iif ljh$JID   # nothing leaves the host"
ip route get 192.0.2.1 from "$IP4" iif "ljh$JID" 2>&1 || true

say jailctl remove $JID
jailctl remove "$JID"
JID=""
say jls
jls
echo "(no jails)"
