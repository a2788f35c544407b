# IPv6: addresses with every prefix class, interfaces, protocols, tcp/udp, mark, targets.
*filter
:INPUT
-s 2001:db8::1 -j ACCEPT;ok
-s 2001:db8::/32 -j ACCEPT;ok
-s 2001:db8::/48 -j ACCEPT;ok
-s 2001:db8::/64 -j ACCEPT;ok
-s fe80::/10 -j ACCEPT;ok
-s 2001:db8::/127 -j ACCEPT;ok
-s ::/0 -j ACCEPT;ok
! -s fc00::/7 -j DROP;ok
-d ff02::1 -j ACCEPT;ok
! -d 2001:db8::/56 -j DROP;ok
-s 2001:db8::/ffff:ffff:0:ffff:: -j ACCEPT;ok
-i eth0 -j ACCEPT;ok
-i eth+ -j ACCEPT;ok
! -i eth0 -j ACCEPT;ok
-p tcp -j ACCEPT;ok
-p ipv6-icmp -j ACCEPT;ok
! -p udp -j ACCEPT;ok
-p tcp --dport 22 -j ACCEPT;ok
-p tcp --sport 1024 --dport 22 -j ACCEPT;ok
-p tcp ! --dport 1000:2000 -j ACCEPT;ok
-p tcp --syn -j DROP;ok
-p udp --dport 546:547 -j ACCEPT;ok
-p udp ! --sport 53 ! --dport 53 -j ACCEPT;ok
-m mark --mark 0x1/0x1 -j ACCEPT;ok
-m limit --limit 10/min -j ACCEPT;ok
-j FOO;ok
-g BAR;ok
-j RETURN;ok
-j NFLOG --nflog-group 6 --nflog-prefix v6;ok
:FORWARD
-i eth0 ! -o eth1 -s 2001:db8::/64 -d 2001:db8:1::/64 -p tcp --dport 443 -j ACCEPT;ok
*raw
:PREROUTING
-p udp -j TRACE;ok
