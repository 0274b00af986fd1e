"""Building blocks of the seeded mixed-traffic generator (`simulators.mixed_capture`).

`wire` builds Ethernet/IPv4/TCP/UDP frames and TCP sessions with consistent sequence numbers; `net` lays out
the simulated site (hosts, roles, subnets, MACs); one module per traffic family (`modbus`, `bacnet`, `mqtt`,
`it`) produces frames of valid application messages. Nothing here touches the network or the wall clock.
"""
