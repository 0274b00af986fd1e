"""Name tables for the Modbus/TCP decoder: function, exception, sub-function, MEI and device-object names.

Function and exception names follow Zeek's `scripts/base/protocols/modbus/consts.zeek` (the `func` and
`exception` columns of modbus.log); diagnostic sub-function names follow the Modbus Application Protocol
v1.1b3 (section 6.8) with Zeek's spelling; MEI types, conformity levels and device-identification object
names follow the same spec (section 6.21) and, where it has them, CISA ICSNPP-Modbus.
"""

from __future__ import annotations

FUNCTION_NAMES: dict[int, str] = {
    0x01: "READ_COILS",
    0x02: "READ_DISCRETE_INPUTS",
    0x03: "READ_HOLDING_REGISTERS",
    0x04: "READ_INPUT_REGISTERS",
    0x05: "WRITE_SINGLE_COIL",
    0x06: "WRITE_SINGLE_REGISTER",
    0x07: "READ_EXCEPTION_STATUS",
    0x08: "DIAGNOSTICS",
    0x0B: "GET_COMM_EVENT_COUNTER",
    0x0C: "GET_COMM_EVENT_LOG",
    0x0F: "WRITE_MULTIPLE_COILS",
    0x10: "WRITE_MULTIPLE_REGISTERS",
    0x11: "REPORT_SLAVE_ID",
    0x14: "READ_FILE_RECORD",
    0x15: "WRITE_FILE_RECORD",
    0x16: "MASK_WRITE_REGISTER",
    0x17: "READ_WRITE_MULTIPLE_REGISTERS",
    0x18: "READ_FIFO_QUEUE",
    0x2B: "ENCAP_INTERFACE_TRANSPORT",
    0x5B: "OBJECT_MESSAGING",
    # machine, vendor and network specific functions (Zeek names them too)
    0x09: "PROGRAM_484",
    0x0A: "POLL_484",
    0x0D: "PROGRAM_584_984",
    0x0E: "POLL_584_984",
    0x12: "PROGRAM_884_U84",
    0x13: "RESET_COMM_LINK_884_U84",
    0x28: "PROGRAM_CONCEPT",
    0x29: "MULTIPLE_FUNCTION_CODES",
    0x5A: "PROGRAM_UNITY",
    0x7D: "FIRMWARE_REPLACEMENT",
    0x7E: "PROGRAM_584_984_2",
    0x7F: "REPORT_LOCAL_ADDRESS",
}

EXCEPTION_NAMES: dict[int, str] = {
    0x01: "ILLEGAL_FUNCTION",
    0x02: "ILLEGAL_DATA_ADDRESS",
    0x03: "ILLEGAL_DATA_VALUE",
    0x04: "SLAVE_DEVICE_FAILURE",
    0x05: "ACKNOWLEDGE",
    0x06: "SLAVE_DEVICE_BUSY",
    0x08: "MEMORY_PARITY_ERROR",
    0x0A: "GATEWAY_PATH_UNAVAILABLE",
    0x0B: "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
}

# FC 8 sub-functions. Zeek knows all of these but 0x13 and 0x15 (it reports those as unknown sub-functions).
DIAG_SUBFUNCTIONS: dict[int, str] = {
    0x00: "RETURN_QUERY_DATA",
    0x01: "RESTART_COMMUNICATIONS_OPTION",
    0x02: "RETURN_DIAGNOSTIC_REGISTER",
    0x03: "CHANGE_ASCII_INPUT_DELIMITER",
    0x04: "FORCE_LISTEN_ONLY_MODE",
    0x0A: "CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER",
    0x0B: "RETURN_BUS_MESSAGE_COUNT",
    0x0C: "RETURN_BUS_COMMUNICATION_ERROR_COUNT",
    0x0D: "RETURN_BUS_EXCEPTION_ERROR_COUNT",
    0x0E: "RETURN_SERVER_MESSAGE_COUNT",
    0x0F: "RETURN_SERVER_NO_RESPONSE_COUNT",
    0x10: "RETURN_SERVER_NAK_COUNT",
    0x11: "RETURN_SERVER_BUSY_COUNT",
    0x12: "RETURN_BUS_CHARACTER_OVERRUN_COUNT",
    0x13: "RETURN_IOP_OVERRUN_COUNT",
    0x14: "CLEAR_OVERRUN_COUNTER_AND_FLAG",
    0x15: "GET_CLEAR_MODBUS_PLUS_STATISTICS",
}

# FC 43 MEI types (ICSNPP spelling).
MEI_CANOPEN = 0x0D
MEI_READ_DEVICE_ID = 0x0E
MEI_TYPES: dict[int, str] = {
    MEI_CANOPEN: "CANOPEN-GENERAL-REFERENCE",
    MEI_READ_DEVICE_ID: "READ-DEVICE-IDENTIFICATION",
}

# FC 43/14 "read device id code" values.
READ_DEVICE_ID_CODES: dict[int, str] = {
    0x01: "BASIC",
    0x02: "REGULAR",
    0x03: "EXTENDED",
    0x04: "SPECIFIC",
}

# FC 43/14 conformity levels (ICSNPP spelling).
CONFORMITY_LEVELS: dict[int, str] = {
    0x01: "Basic Identification (Stream)",
    0x02: "Regular Identification (Stream)",
    0x03: "Extended Identification (Stream)",
    0x81: "Basic Identification (Stream, Individual)",
    0x82: "Regular Identification (Stream, Individual)",
    0x83: "Extended Identification (Stream, Individual)",
}

# FC 43/14 standard objects; 0x07-0x7F are reserved, 0x80-0xFF private (reported by id as "0xNN").
DEVICE_ID_OBJECTS: dict[int, str] = {
    0x00: "vendor_name",
    0x01: "product_code",
    0x02: "revision",
    0x03: "vendor_url",
    0x04: "product_name",
    0x05: "model_name",
    0x06: "user_application_name",
}

# op (lower-case function name) -> operation class of appliance/stats.py OP_CLASSES.
OP_CLASSES: dict[str, str] = {
    "read_coils": "read",
    "read_discrete_inputs": "read",
    "read_holding_registers": "read",
    "read_input_registers": "read",
    "read_file_record": "read",
    "read_fifo_queue": "read",
    "write_single_coil": "write",
    "write_single_register": "write",
    "write_multiple_coils": "write",
    "write_multiple_registers": "write",
    "write_file_record": "write",
    "mask_write_register": "write",
    "read_write_multiple_registers": "write",
    "read_exception_status": "diagnostic",
    "diagnostics": "diagnostic",
    "get_comm_event_counter": "diagnostic",
    "get_comm_event_log": "diagnostic",
    "report_slave_id": "discovery",
    "read_device_identification": "discovery",
    "report_local_address": "discovery",
    "encap_interface_transport": "other",
    "object_messaging": "other",
    "multiple_function_codes": "other",
    "poll_484": "other",
    "poll_584_984": "other",
    "program_484": "command",
    "program_584_984": "command",
    "program_584_984_2": "command",
    "program_884_u84": "command",
    "program_concept": "command",
    "program_unity": "command",
    "reset_comm_link_884_u84": "command",
    "firmware_replacement": "command",
}
