"""The live IT side of the demo site and the attacker: DNS, HTTP, SMB2 and LDAP puppets on loopback addresses, the
employee's benign history (`Attacker.learn`) and the VPN intrusion chain (`Attacker.play`) played against them."""
