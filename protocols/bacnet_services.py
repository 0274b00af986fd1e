"""BACnet service decoders: discovery, device control, files, time synchronisation, COV subscription, alarms.

Each `f(buf, toks, fields, probs) -> next token index` reads one service's parameters, tokenized by
protocols/bacnet_tags.tokenize, into `fields` (names per the BACnet event schema; protocols/bacnet_values.py
dispatches to them and lists the coverage). A missing mandatory parameter is reported and ends the decode.
Passwords (DeviceCommunicationControl, ReinitializeDevice) are never read, only noticed.
"""

from __future__ import annotations

from protocols.bacnet_enums import (
    DEVICE_STATES,
    EVENT_STATES,
    REINIT_STATES,
    SEGMENTATION,
    name,
    object_type_name,
    vendor_name,
)
from protocols.bacnet_tags import (
    APP,
    CLOSE,
    CTX,
    MISSING,
    OPEN,
    Fields,
    Problems,
    Token,
    char_text,
    constructed,
    date_time_text,
    missing,
    objid_at,
    sint,
    tok_at,
    uint_at,
)


def _range(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """Who-Is/Who-Has device instance range: [0] low, [1] high (both or neither); returns the next index."""
    lo, hi = uint_at(b, toks, 0, CTX, 0), uint_at(b, toks, 1, CTX, 1)
    if lo is not None and hi is not None:
        f["range"] = f"{lo}-{hi}"
        return 2
    f["range"] = "All"
    if tok_at(toks, 0, CTX, 0) or tok_at(toks, 0, CTX, 1):
        probs.append((MISSING, "device instance range needs both limits"))
        return 2 if tok_at(toks, 1, CTX, 1) else 1
    return 0


def who_is(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """Who-Is: the device instance range."""
    return _range(b, toks, f, probs)


def i_am(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """I-Am: device identifier, max APDU, segmentation, vendor id and name."""
    o = objid_at(b, toks, 0, APP, 12)
    if o is None:
        return missing(toks, probs, "i-am device identifier")
    f["object_type"] = object_type_name(o[0])
    f["instance_number"] = o[1]
    v = uint_at(b, toks, 1, APP, 2)
    if v is None:
        return missing(toks, probs, "i-am max-apdu-length-accepted")
    f["max_apdu"] = v
    v = uint_at(b, toks, 2, APP, 9)
    if v is None:
        return missing(toks, probs, "i-am segmentation-supported")
    f["segmentation"] = name(SEGMENTATION, v)
    v = uint_at(b, toks, 3, APP, 2)
    if v is None:
        return missing(toks, probs, "i-am vendor-id")
    f["vendor_id"] = v
    f["vendor"] = vendor_name(v)
    return 4


def who_has(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """Who-Has: the range, then the object identifier or the object name looked for."""
    i = _range(b, toks, f, probs)
    o = objid_at(b, toks, i, CTX, 2)
    if o is not None:
        f["object_type"] = object_type_name(o[0])
        f["instance_number"] = o[1]
        return i + 1
    t = tok_at(toks, i, CTX, 3)
    if t is None:
        return missing(toks, probs, "who-has object identifier or name")
    f["object_name"] = char_text(b, t, probs)
    return i + 1


def i_have(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """I-Have: device identifier, object identifier, object name."""
    d, o, t = objid_at(b, toks, 0, APP, 12), objid_at(b, toks, 1, APP, 12), tok_at(toks, 2, APP, 7)
    if d is None or o is None or t is None:
        return missing(toks, probs, "i-have device identifier, object identifier and object name")
    f["device_id_type"] = object_type_name(d[0])
    f["device_id_number"] = d[1]
    f["object_type"] = object_type_name(o[0])
    f["instance_number"] = o[1]
    f["object_name"] = char_text(b, t, probs)
    return 3


def time_sync(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """(UTC-)Time-Synchronization: the date and time sent."""
    d, t = tok_at(toks, 0, APP, 10), tok_at(toks, 1, APP, 11)
    text = date_time_text(b, d, t) if d is not None and t is not None else None
    if text is None:
        return missing(toks, probs, "time-synchronization date and time")
    f["time"] = text
    return 2


def dcc(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """DeviceCommunicationControl: duration, enable/disable, whether a password was sent (never its text)."""
    i = 0
    d = uint_at(b, toks, 0, CTX, 0)
    if d is not None:
        f["time_duration"] = d
        i = 1
    s = uint_at(b, toks, i, CTX, 1)
    if s is None:
        return missing(toks, probs, "device-communication-control enable-disable")
    f["device_state"] = name(DEVICE_STATES, s)
    f["password"] = tok_at(toks, i + 1, CTX, 2) is not None  # never read the password itself
    return i + 2 + f["password"]


def reinit(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """ReinitializeDevice: the state asked for, whether a password was sent (never its text)."""
    s = uint_at(b, toks, 0, CTX, 0)
    if s is None:
        return missing(toks, probs, "reinitialize-device state")
    f["device_state"] = name(REINIT_STATES, s)
    f["password"] = tok_at(toks, 1, CTX, 1) is not None  # never read the password itself
    return 1 + f["password"]


def _file_access(b: bytes, toks: list[Token], i: int, f: Fields, probs: Problems, write: bool) -> int:
    """Stream [0] or record [1] access: start (signed), then count and/or octet strings, up to its close."""
    record = tok_at(toks, i, OPEN, 1) is not None
    if not record and tok_at(toks, i, OPEN, 0) is None:
        return missing(toks, probs, "file stream or record access")
    t = tok_at(toks, i + 1, APP, 3)
    start = sint(b, t) if t is not None else None
    if start is None:
        return missing(toks, probs, "file start position")
    f["file_start_position"] = start
    i += 2
    count = uint_at(b, toks, i, APP, 2)
    if count is not None:
        f["file_record_count" if record else "file_octet_count"] = count
        i += 1
    size, n = 0, len(toks)
    while i < n and toks[i][0] == APP and toks[i][1] == 6:
        size += toks[i][3]
        i += 1
    if write:
        f["file_data_length"] = size
    if tok_at(toks, i, CLOSE, 1 if record else 0) is None:
        return missing(toks, probs, "end of the file access parameters")
    return i + 1


def arf(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """AtomicReadFile request: file instance, start and requested count."""
    o = objid_at(b, toks, 0, APP, 12)
    if o is None:
        return missing(toks, probs, "file identifier")
    f["file_object"] = o[1]
    return _file_access(b, toks, 1, f, probs, write=False)


def awf(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """AtomicWriteFile request: file instance, start, record count, data length (never the data)."""
    o = objid_at(b, toks, 0, APP, 12)
    if o is None:
        return missing(toks, probs, "file identifier")
    f["file_object"] = o[1]
    return _file_access(b, toks, 1, f, probs, write=True)


def arf_ack(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """AtomicReadFile ACK: end of file, start, record count, data length (never the data)."""
    t = tok_at(toks, 0, APP, 1)
    if t is None:
        return missing(toks, probs, "end-of-file flag")
    f["end_of_file"] = t[3] == 1
    return _file_access(b, toks, 1, f, probs, write=True)


def awf_ack(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """AtomicWriteFile ACK: the start position or record written."""
    t = tok_at(toks, 0, CTX, 0) or tok_at(toks, 0, CTX, 1)
    start = sint(b, t) if t is not None else None
    if start is None:
        return missing(toks, probs, "file start position or record")
    f["file_start_position"] = start
    return 1


def subscribe_cov(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """SubscribeCOV: subscriber process, monitored object, confirmed flag, lifetime."""
    sp, o = uint_at(b, toks, 0, CTX, 0), objid_at(b, toks, 1, CTX, 1)
    if sp is None or o is None:
        return missing(toks, probs, "subscriber process and monitored object")
    f["subscriber_process_id"] = sp
    f["monitored_object_type"] = object_type_name(o[0])
    f["monitored_instance"] = o[1]
    i = 2
    c = uint_at(b, toks, i, CTX, 2)
    if c is not None:
        f["issue_confirmed"] = c == 1
        i += 1
    life = uint_at(b, toks, i, CTX, 3)
    if life is not None:
        f["lifetime"] = life
        i += 1
    return i


def ack_alarm(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    """AcknowledgeAlarm: acknowledging process, event object, state acknowledged, source."""
    pid, o, st = uint_at(b, toks, 0, CTX, 0), objid_at(b, toks, 1, CTX, 1), uint_at(b, toks, 2, CTX, 2)
    if pid is None or o is None or st is None or tok_at(toks, 3, OPEN, 3) is None:
        return missing(toks, probs, "acknowledge-alarm parameters")
    f["acknowledging_process_id"] = pid
    f["event_object_type"] = object_type_name(o[0])
    f["event_instance"] = o[1]
    f["event_state_acknowledged"] = name(EVENT_STATES, st)
    i = constructed(b, toks, 3, probs)[2]  # the time stamp
    t = tok_at(toks, i, CTX, 4)
    if t is None or tok_at(toks, i + 1, OPEN, 5) is None:
        return missing(toks, probs, "acknowledge-alarm source and time of acknowledgment")
    f["ack_source"] = char_text(b, t, probs)
    return constructed(b, toks, i + 1, probs)[2]
