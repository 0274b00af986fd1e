"""Seeded generators of IT protocol traffic (DNS, DHCP, HTTP, SMB, LDAP) as Ethernet frames and pcaps, for tests."""
