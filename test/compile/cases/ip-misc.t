# mark, limit, and the natively lowered targets.
*filter
:INPUT
-m mark --mark 0x1 -j ACCEPT;ok
-m mark --mark 0x1/0xff -j ACCEPT;ok
-m mark ! --mark 0x4000/0x4000 -j DROP;ok
-m mark --mark 0x0 -j ACCEPT;ok
-m mark --mark 0xffffffff -j ACCEPT;ok
-m mark ! --mark 0x10 -j ACCEPT;ok
-m limit --limit 3/min -j ACCEPT;ok
-m limit --limit 5/sec --limit-burst 10 -j ACCEPT;ok
-m limit --limit 1/hour -j ACCEPT;ok
-m limit --limit 2/day -j ACCEPT;ok
-m limit --limit 100/sec -j ACCEPT;ok
-m limit -j ACCEPT;ok
-m limit --limit 30/min --limit-burst 1 -j ACCEPT;ok
-p tcp --dport 22 -m mark --mark 0x2 -m limit --limit 1/s -j ACCEPT;ok
-j DROP;ok
-j RETURN;ok
-j FOO;ok
-g FOO;ok
-p tcp -j FOO;ok
-s 10.0.0.0/8 -g BAR;ok
-j NFLOG;ok
-j NFLOG --nflog-group 5;ok
-j NFLOG --nflog-group 2 --nflog-prefix "drop: " --nflog-threshold 10;ok
-j NFLOG --nflog-range 128;ok
-j NFLOG --nflog-size 256 --nflog-group 1;ok
-m mark --mark 0x1 -j NFLOG --nflog-prefix x;ok
:FOO
-j RETURN;ok
-p udp -j ACCEPT;ok
:OUTPUT
-m mark --mark 0x1 -j RETURN;ok
*raw
:PREROUTING
-j TRACE;ok
-p tcp --dport 80 -j TRACE;ok
:OUTPUT
-s 10.0.0.1 -j TRACE;ok
