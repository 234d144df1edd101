#!/usr/bin/env bash
# Capture real VRRP adverts from Debian's keepalived as codec test vectors.
#
# Run as root from anywhere:  scripts/capture-vectors.sh [OUTDIR]   (default: testdata/vectors)
#
# Topology (LAB.md conventions: vx- prefix + run tag, TEST-NET/doc prefixes only):
#
#   ns vx-$$-codec-a                         ns vx-$$-codec-b
#   eth0 02:00:5e:c0:de:0a  <---- veth ---->  eth0 02:00:5e:c0:de:0b
#   192.0.2.1/24 2001:db8::1/64               192.0.2.2/24 2001:db8::2/64
#   keepalived (one config at a time)         tcpdump (proto 112)
#
# For every config, keepalived runs until it has sent two adverts as MASTER, is stopped with SIGTERM (it then sends a
# priority-0 advert, RFC 9568 §6.4.3), and the capture is cut into two vectors:
#   <name>.hex        the first advert of the run
#   <name>-prio0.hex  the priority-0 advert sent on shutdown
# Each vector is one whole Ethernet frame as hex, after a '#' comment header.
# Runtime is bounded (about 5-10 s per config, every wait has a timeout); a trap kills what this
# script started (by PID) and deletes the namespaces it created, also on failure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$HERE/testdata/vectors}
TAG="vx-$$-codec"
NSA="$TAG-a"
NSB="$TAG-b"
TMP=$(mktemp -d /tmp/vx-codec-vectors.XXXXXX)
PIDS=()
CREATED_NS=()

cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    sleep 0.3
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null || true
    done
    for ns in "${CREATED_NS[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
for t in keepalived tcpdump tshark ip timeout; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
mkdir -p "$OUT"

KA_VERSION=$(keepalived --version 2>&1 | sed -n 1p)

ip netns add "$NSA"; CREATED_NS+=("$NSA")
ip netns add "$NSB"; CREATED_NS+=("$NSB")
for ns in "$NSA" "$NSB"; do
    # No DAD delay: the IPv6 link-local source must be usable at once.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$ns" link set lo up
done
ip -n "$NSA" link add eth0 address 02:00:5e:c0:de:0a type veth peer name eth0 netns "$NSB" address 02:00:5e:c0:de:0b
ip -n "$NSA" addr add 192.0.2.1/24 dev eth0
ip -n "$NSA" addr add 2001:db8::1/64 dev eth0 nodad
ip -n "$NSB" addr add 192.0.2.2/24 dev eth0
ip -n "$NSB" addr add 2001:db8::2/64 dev eth0 nodad
ip -n "$NSA" link set eth0 up
ip -n "$NSB" link set eth0 up
sleep 0.5

# write_conf NAME INSTANCE-BODY
write_conf() {
    cat > "$TMP/$1.conf" <<CONF
global_defs {
    router_id vx_codec
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 1
}
vrrp_instance VI_$1 {
    interface eth0
    state MASTER
    priority 100
$2
}
CONF
}

# emit_vector PCAP DISPLAY-FILTER OUTFILE NAME DESCRIPTION
emit_vector() {
    local pcap=$1 filter=$2 out=$3 name=$4 desc=$5
    local frame="$TMP/frame.pcap"
    local num
    num=$(tshark -r "$pcap" -Y "$filter" -T fields -e frame.number 2>/dev/null | sed -n 1p)
    [ -n "$num" ] && tshark -r "$pcap" -Y "frame.number == $num" -w "$frame" 2>/dev/null
    if [ "$(tshark -r "$frame" 2>/dev/null | wc -l)" != 1 ]; then
        echo "no frame matching '$filter' for $name" >&2
        return 1
    fi
    {
        echo "# $name: $desc"
        echo "# Produced by scripts/capture-vectors.sh: $KA_VERSION ($(dpkg-query -W -f='${Package} ${Version}' keepalived 2>/dev/null || echo keepalived)),"
        echo "# run as 'keepalived -n -l -D --vrrp -f CONF' in netns A (eth0 02:00:5e:c0:de:0a, 192.0.2.1/24,"
        echo "# 2001:db8::1/64), captured by tcpdump in netns B over a veth; tshark display filter: $filter"
        echo "# tshark: $(tshark -r "$frame" -T fields -E separator=' ' -e vrrp.version -e vrrp.virt_rtr_id -e vrrp.prio -e vrrp.addr_count -e vrrp.checksum -e vrrp.checksum.status 2>/dev/null |
            sed 's/^/version vrid prio count checksum checksum.status(1=good) = /')"
        echo "# Config:"
        sed 's/^/#   /' "$TMP/$name.conf"
        echo "# Frame (Ethernet, $(tshark -r "$frame" -T fields -e frame.len 2>/dev/null) bytes):"
        tcpdump -r "$frame" -xx 2>/dev/null | grep -E '^\s+0x' | sed -E 's/^\s+0x[0-9a-f]+:\s+//' |
            sed -E 's/([0-9a-f]{2})([0-9a-f]{2})/\1 \2/g' | sed -E 's/\s+$//'
    } > "$out"
    echo "wrote $out"
}

# capture NAME DESCRIPTION
capture() {
    local name=$1 desc=$2
    local pcap="$TMP/$name.pcap"
    ip netns exec "$NSB" timeout 30 tcpdump -i eth0 -U -n -w "$pcap" 'ip proto 112 or ip6 proto 112' \
        >"$TMP/$name.tcpdump.log" 2>&1 &
    local td=$!
    PIDS+=("$td")
    sleep 1
    ip netns exec "$NSA" timeout 30 keepalived -n -l -D --vrrp -f "$TMP/$name.conf" \
        -p "$TMP/$name.keepalived.pid" -r "$TMP/$name.vrrp.pid" >"$TMP/$name.keepalived.log" 2>&1 &
    local ka=$!
    PIDS+=("$ka")
    # keepalived 2.2.7 starts in BACKUP even with "state MASTER" and takes over after the
    # master-down interval (3 x advert_int + skew): wait for two adverts, at most 15 s.
    for _ in $(seq 75); do
        [ "$(tshark -r "$pcap" -Y 'vrrp && vrrp.prio != 0' 2>/dev/null | wc -l)" -ge 2 ] && break
        sleep 0.2
    done
    kill -TERM "$ka" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$ka" 2>/dev/null || break; sleep 0.1; done
    sleep 0.5
    kill -INT "$td" 2>/dev/null || true
    wait "$td" 2>/dev/null || true
    wait "$ka" 2>/dev/null || true
    if ! emit_vector "$pcap" 'vrrp && vrrp.prio != 0' "$OUT/keepalived-$name.hex" "$name" "$desc" ||
       ! emit_vector "$pcap" 'vrrp && vrrp.prio == 0' "$OUT/keepalived-$name-prio0.hex" "$name" "$desc, priority-0 advert sent on SIGTERM"; then
        echo "--- keepalived log ($name)" >&2; tail -n 30 "$TMP/$name.keepalived.log" >&2
        return 1
    fi
}

write_conf v2-auth '    version 2
    virtual_router_id 51
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101/24
    }'
capture v2-auth "VRRPv2 IPv4, simple password 1111, VRID 51, 2 VIPs, advert_int 1"

write_conf v2-noauth '    version 2
    virtual_router_id 52
    advert_int 2
    virtual_ipaddress {
        192.0.2.102/24
    }'
capture v2-noauth "VRRPv2 IPv4, no authentication, VRID 52, 1 VIP, advert_int 2"

write_conf v3-ipv4 '    version 3
    virtual_router_id 53
    advert_int 1
    virtual_ipaddress {
        192.0.2.110/24
        192.0.2.111/24
        192.0.2.112/24
    }'
capture v3-ipv4 "VRRPv3 IPv4 (checksum with pseudo-header, keepalived's default), VRID 53, 3 VIPs, advert_int 1"

write_conf v3-ipv4-frac '    version 3
    virtual_router_id 54
    advert_int 0.5
    virtual_ipaddress {
        192.0.2.120/24
    }'
capture v3-ipv4-frac "VRRPv3 IPv4, VRID 54, 1 VIP, fractional advert_int 0.5 (50 cs)"

write_conf v3-ipv4-unicast '    version 3
    virtual_router_id 56
    advert_int 1
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.130/24
    }'
capture v3-ipv4-unicast "VRRPv3 IPv4 unicast to 192.0.2.2 (pseudo-header carries the unicast destination), VRID 56, 1 VIP"

write_conf v3-ipv6 '    version 3
    native_ipv6
    virtual_router_id 55
    advert_int 1
    virtual_ipaddress {
        2001:db8::100/64
        2001:db8::101/64
        2001:db8:0:1::1/64
    }'
capture v3-ipv6 "VRRPv3 IPv6 (native_ipv6, checksum with the IPv6 pseudo-header), VRID 55, 3 VIPs, advert_int 1"

write_conf v3-ipv6-frac '    version 3
    native_ipv6
    virtual_router_id 57
    advert_int 0.25
    virtual_ipaddress {
        2001:db8::200/64
    }'
capture v3-ipv6-frac "VRRPv3 IPv6, VRID 57, 1 VIP, fractional advert_int 0.25 (25 cs)"

echo "done: $(ls "$OUT"/keepalived-*.hex | wc -l) vectors in $OUT"
