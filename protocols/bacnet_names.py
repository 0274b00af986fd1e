"""Name tables for the BACnet decoder: BVLC functions and results, network-layer messages, PDU types, services.

Texts that land in ICSNPP's bacnet.log columns (`bvlc_function`, `pdu_type`, `pdu_service`, `result_code` of a
BVLC-Result) follow CISA ICSNPP-BACnet's `scripts/consts.zeek` and its newest baselines (`reinitialize_device`,
`who_am_i`, `you_are`, `ERROR_PDU`...). Services ICSNPP lacks carry their ASHRAE 135-2020 name in the same
snake_case. Our `op` vocabulary is that snake_case service or message name (see protocols/bacnet.py).
"""

from __future__ import annotations

# BVLC function -> (ICSNPP bvlc_function text, our op). Functions 0x04, 0x09, 0x0A, 0x0B carry an NPDU: their
# events take the op of the message inside.
BVLC_FUNCTIONS: dict[int, tuple[str, str]] = {
    0x00: ("BVLC_Result", "bvlc_result"),
    0x01: ("Write_Broadcast_Table", "write_bdt"),
    0x02: ("Read_Broadcast_Table", "read_bdt"),
    0x03: ("Read_Broadcast_Table_ACK", "read_bdt_ack"),
    0x04: ("Forwarded_NPDU", "forwarded_npdu"),
    0x05: ("Register_Foreign_Device", "register_foreign_device"),
    0x06: ("Read_Foreign_Device_Table", "read_fdt"),
    0x07: ("Read_Foreign_Device_Table_ACK", "read_fdt_ack"),
    0x08: ("Delete_Foreign_Device_Table_Entry", "delete_fdt_entry"),
    0x09: ("Distribute_Broadcast_to_Network", "distribute_broadcast_to_network"),
    0x0A: ("Original_Unicast_NPDU", "original_unicast_npdu"),
    0x0B: ("Original_Broadcast_NPDU", "original_broadcast_npdu"),
    0x0C: ("Secure_BVLL", "secure_bvll"),  # not in ICSNPP's table (it would print "Unknown BVLC Function Code-0x0c")
}
BVLC_WITH_NPDU = frozenset({0x04, 0x09, 0x0A, 0x0B})


def bvlc_function_text(code: int) -> str:
    """ICSNPP's bvlc_function text, its own `Unknown BVLC Function Code-0xNN` for an unassigned code."""
    known = BVLC_FUNCTIONS.get(code)
    return known[0] if known else f"Unknown BVLC Function Code-0x{code:02x}"


# BVLC-Result codes (ICSNPP bvlc_results)
BVLC_RESULTS: dict[int, str] = {
    0x00: "Successful_completion",
    0x10: "Write-Broadcast-Distribution-Table_NAK",
    0x20: "Read-Broadcast-Distribution-Table_NAK",
    0x30: "Register-Foreign-Device_NAK",
    0x40: "Read-Foreign-Device-Table_NAK",
    0x50: "Delete-Foreign-Device-Table-Entry_NAK",
    0x60: "Distribute-Broadcast-To-Network_NAK",
}


def bvlc_result_text(code: int) -> str:
    """ICSNPP's text for a BVLC-Result code (`Unknown BVLC Result Code-0xNN` for others)."""
    return BVLC_RESULTS.get(code) or f"Unknown BVLC Result Code-0x{code:02x}"


# Network-layer message types (ICSNPP npdu_message_types, 0x12/0x13 from ASHRAE 135-2020) -> op.
NETWORK_MESSAGES: dict[int, str] = {
    0x00: "who_is_router_to_network",
    0x01: "i_am_router_to_network",
    0x02: "i_could_be_router_to_network",
    0x03: "reject_message_to_network",
    0x04: "router_busy_to_network",
    0x05: "router_available_to_network",
    0x06: "initialize_routing_table",
    0x07: "initialize_routing_table_ack",
    0x08: "establish_connection_to_network",
    0x09: "disconnect_connection_to_network",
    0x0A: "challenge_request",
    0x0B: "security_payload",
    0x0C: "security_response",
    0x0D: "request_key_update",
    0x0E: "update_key_set",
    0x0F: "update_distribution_key",
    0x10: "request_master_key",
    0x11: "set_master_key",
    0x12: "what_is_network_number",
    0x13: "network_number_is",
}


def network_message_op(code: int) -> str:
    """Our op for a network-layer message type: its name, else `unknown-network-N` (0x80-0xFF are proprietary)."""
    return NETWORK_MESSAGES.get(code) or f"unknown-network-{code}"


def network_message_text(code: int) -> str:
    """ICSNPP's pdu_service text for a network-layer message (`Unknown NPDU Type-0xNN` for others)."""
    return NETWORK_MESSAGES.get(code) or f"Unknown NPDU Type-0x{code:02x}"


# Reject-Message-To-Network reasons (ASHRAE 135 6.4.4; names as the matching error codes 110-115 spell them)
NETWORK_REJECT_REASONS: dict[int, str] = {
    0: "other",
    1: "not-router-to-dnet",
    2: "router-busy",
    3: "unknown-network-message",
    4: "message-too-long",
    5: "security-error",
    6: "addressing-error",
}

NETWORK_PRIORITIES = ("normal", "urgent", "critical-equipment", "life-safety")

# APDU types (ICSNPP apdu_types)
PDU_TYPES: dict[int, str] = {
    0: "CONFIRMED_REQUEST",
    1: "UNCONFIRMED_REQUEST",
    2: "SIMPLE_ACK",
    3: "COMPLEX_ACK",
    4: "SEGMENT_ACK",
    5: "ERROR_PDU",
    6: "REJECT_PDU",
    7: "ABORT_PDU",
}

CONFIRMED_SERVICES: dict[int, str] = {
    0: "acknowledge_alarm",
    1: "confirmed_cov_notification",
    2: "confirmed_event_notification",
    3: "get_alarm_summary",
    4: "get_enrollment_summary",
    5: "subscribe_cov",
    6: "atomic_read_file",
    7: "atomic_write_file",
    8: "add_list_element",
    9: "remove_list_element",
    10: "create_object",
    11: "delete_object",
    12: "read_property",
    13: "read_property_conditional",
    14: "read_property_multiple",
    15: "write_property",
    16: "write_property_multiple",
    17: "device_communication_control",
    18: "confirmed_private_transfer",
    19: "confirmed_text_message",
    20: "reinitialize_device",
    21: "vt_open",
    22: "vt_close",
    23: "vt_data",
    24: "authenticate",
    25: "request_key",
    26: "read_range",
    27: "life_safety_operation",
    28: "subscribe_cov_property",
    29: "get_event_information",
    30: "subscribe_cov_property_multiple",
    31: "confirmed_cov_notification_multiple",
    32: "confirmed_audit_notification",
    33: "audit_log_query",
}

UNCONFIRMED_SERVICES: dict[int, str] = {
    0: "i_am",
    1: "i_have",
    2: "unconfirmed_cov_notification",
    3: "unconfirmed_event_notification",
    4: "unconfirmed_private_transfer",
    5: "unconfirmed_text_message",
    6: "time_synchronization",
    7: "who_has",
    8: "who_is",
    9: "utc_time_synchronization",
    10: "write_group",
    11: "unconfirmed_cov_notification_multiple",
    12: "unconfirmed_audit_notification",
    13: "who_am_i",
    14: "you_are",
}


def service_text(code: int, confirmed: bool) -> str:
    """ICSNPP's bacnet.log pdu_service for a service choice (`Unknown Service Choice-0xNN` for others)."""
    name = (CONFIRMED_SERVICES if confirmed else UNCONFIRMED_SERVICES).get(code)
    return name or f"Unknown Service Choice-0x{code:02x}"


# Max-APDU-length-accepted (4 bits) and max-segments-accepted (3 bits; 0 = unspecified, 65 = more than 64)
MAX_APDU = (50, 128, 206, 480, 1024, 1476)
MAX_SEGMENTS = (0, 2, 4, 8, 16, 32, 64, 65)

# op -> operation class of appliance/stats.py OP_CLASSES (ops not listed are "other"); the inventory uses this
# same table (appliance/bacnet_assets.py BACNET_OP_CLASSES).
OP_CLASSES: dict[str, str] = {
    **dict.fromkeys(
        ("who_is", "i_am", "who_has", "i_have", "who_am_i", "who_is_router_to_network", "i_am_router_to_network",
         "i_could_be_router_to_network", "what_is_network_number", "network_number_is"),
        "discovery",
    ),
    **dict.fromkeys(
        ("read_property", "read_property_multiple", "read_property_conditional", "read_range", "atomic_read_file",
         "get_alarm_summary", "get_enrollment_summary", "get_event_information", "subscribe_cov",
         "subscribe_cov_property", "subscribe_cov_property_multiple", "read_bdt", "read_bdt_ack", "read_fdt",
         "read_fdt_ack"),
        "read",
    ),
    **dict.fromkeys(
        ("write_property", "write_property_multiple", "atomic_write_file", "create_object", "delete_object",
         "add_list_element", "remove_list_element", "write_group", "write_bdt", "delete_fdt_entry",
         "initialize_routing_table", "initialize_routing_table_ack"),
        "write",
    ),
    **dict.fromkeys(
        ("device_communication_control", "reinitialize_device", "time_synchronization", "utc_time_synchronization",
         "life_safety_operation", "acknowledge_alarm", "you_are", "establish_connection_to_network",
         "disconnect_connection_to_network"),
        "command",
    ),
}
