# The IP part: addresses with every prefix class, interfaces, protocols, -f.
*filter
:INPUT
-s 10.0.0.1 -j ACCEPT;ok
-s 10.0.0.0/8 -j ACCEPT;ok
-s 172.16.0.0/12 -j ACCEPT;ok
-s 192.168.0.0/16 -j ACCEPT;ok
-s 192.168.1.0/24 -j ACCEPT;ok
-s 192.168.1.128/25 -j ACCEPT;ok
-s 10.0.0.0/1 -j ACCEPT;ok
-s 10.1.2.3/31 -j ACCEPT;ok
-s 0.0.0.0/0 -j ACCEPT;ok
! -s 10.0.0.0/8 -j DROP;ok
! -s 10.0.0.0/9 -j DROP;ok
-d 1.2.3.4 -j ACCEPT;ok
! -d 1.2.3.4/32 -j ACCEPT;ok
-d 224.0.0.0/4 -j DROP;ok
-s 10.0.0.0/8 -d 192.168.0.0/16 -j ACCEPT;ok
-s 10.0.0.0/255.0.255.0 -j ACCEPT;ok
-i eth0 -j ACCEPT;ok
-i eth+ -j ACCEPT;ok
! -i eth0 -j ACCEPT;ok
! -i eth+ -j ACCEPT;ok
-i + -j ACCEPT;ok
-i lo -j ACCEPT;ok
-i abcdefghijklmno -j ACCEPT;ok
-i vethabcdef0123+ -j ACCEPT;ok
-p tcp -j ACCEPT;ok
-p udp -j ACCEPT;ok
-p icmp -j ACCEPT;ok
-p 47 -j ACCEPT;ok
! -p tcp -j ACCEPT;ok
-p all -j ACCEPT;ok
-f -j DROP;ok
! -f -j ACCEPT;ok
-s 10.0.0.0/8 -i eth0 -p udp -f -j DROP;ok
-j ACCEPT;ok
;ok
:FORWARD
-i eth0 -o eth1 -j ACCEPT;ok
-o br-+ -j ACCEPT;ok
! -o docker0 -j DROP;ok
:OUTPUT
-o eth0 -d 8.8.8.8 -p udp -j ACCEPT;ok
