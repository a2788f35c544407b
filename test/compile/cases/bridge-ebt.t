# ebtables-nft: the basic part of an entry, the modules it runs through
# nft_compat, limit natively, the standard targets and jumps.
*filter
:FORWARD
-p IPv4 -j ACCEPT;ok
-p ! ARP -j DROP;ok
-p LENGTH -j ACCEPT;ok
-p ! LENGTH;ok
-p 0x1234;ok
-i eth0 -j ACCEPT;ok
-i ! eth0 -o eth+ -j DROP;ok
-o veth12345678901;ok
-i +;ok
-i ! +;ok
-s 02:00:00:00:00:0a -j ACCEPT;ok
-s ! 02:00:00:00:00:0a/ff:ff:ff:00:00:00;ok
-d 02:00:00:00:00:00/ff:ff:ff:ff:ff:f0 -j DROP;ok
-d Broadcast -j ACCEPT;ok
-d Multicast -j DROP;ok
-s Unicast;ok
-d BGA -j DROP;ok
-j RETURN;ok
-j CONTINUE;ok
-j FOO;ok
-p IPv4 -i eth0 -s 02:00:00:00:00:01 -d 02:00:00:00:00:02 -j FOO;ok
-p IPv4 --ip-src 10.0.0.0/8 --ip-proto tcp --ip-dport 22:80 -j DROP;ok
-p IPv6 --ip6-dst fe80::/64 --ip6-proto udp --ip6-sport 53 -j ACCEPT;ok
-p ARP --arp-op Request --arp-ip-dst 10.0.0.1 -j ACCEPT;ok
-p ARP --arp-gratuitous;ok
-p 802_1Q --vlan-id 10 --vlan-encap IPv4 -j ACCEPT;ok
-p LENGTH --802_3-sap 0x42;ok
--pkttype-type multicast -j DROP;ok
--mark 0x10/0xff -j ACCEPT;ok
--limit 5/sec --limit-burst 7 -j ACCEPT;ok
--limit 3/min;ok
--log-level info --log-prefix "br" -j ACCEPT;ok
--nflog-group 3 --nflog-prefix "x";ok
--pkttype-type host --log-ip -j mark --mark-set 0x7 --mark-target CONTINUE;ok
-j mark --mark-or 0x100 --mark-target ACCEPT;ok
-d 01:80:c2:00:00:00 --stp-type config --stp-root-prio 4096;ok
*nat
:PREROUTING
-p IPv4 -j dnat --to-dst 02:00:00:00:00:0c --dnat-target ACCEPT;ok
-p ARP --arp-op Request -j arpreply --arpreply-mac 02:00:00:00:00:0d;ok
-j redirect --redirect-target CONTINUE;ok
:POSTROUTING
-s 02:00:00:00:00:0a -j snat --to-src 02:00:00:00:00:0e --snat-arp --snat-target ACCEPT;ok
