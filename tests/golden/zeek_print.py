"""Render otwatch modbus.jsonl rows as the lines Zeek's Modbus btest scripts print, to diff with Zeek's baselines.

Zeek's scripts print one line per event (`modbus_message, c$id, headers, is_orig`, ...) and the baseline is that
output through `sort | uniq -c`. We render our rows the same way and compare the counted lines.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from protocols.modbus import FUNCTION_CODES

CODE_OF = {name: code for code, name in FUNCTION_CODES.items()}


def _bool(value: object) -> str:
    return "T" if value else "F"


def _bits(values: list[int], pad_to: int) -> str:
    bits = [_bool(v) for v in values] + ["F"] * max(0, pad_to - len(values))
    return "[" + ", ".join(bits) + "]"


def _code(row: dict) -> int:
    func = row["func"].removesuffix("_EXCEPTION")
    if func.startswith("unknown-"):
        return int(func.split("-", 1)[1])
    return CODE_OF[func]


def header(row: dict, mask: bool = False) -> str:
    """`c$id, headers` as Zeek prints them (tid and function code masked as in the events baseline)."""
    cid = (
        f"[orig_h={row['id.orig_h']}, orig_p={row['id.orig_p']}/tcp, resp_h={row['id.resp_h']}, "
        f"resp_p={row['id.resp_p']}/tcp, proto=6, ctx=[]]"
    )
    code = _code(row) | (0x80 if row["kind"] == "exception" else 0)
    tid = "XXX" if mask else row["tid"]
    fc = "XXX" if mask else code
    return f"{cid}, [tid={tid}, pid={row.get('pid', 0)}, uid={row['unit']}, function_code={fc}, len={row['len']}]"


def render(row: dict, mask: bool = False) -> list[str]:
    """The Zeek event lines one modbus.jsonl row stands for (modbus_message plus the detail event we can render)."""
    hdr = header(row, mask)
    lines = [f"modbus_message, {hdr}, {_bool(row['is_orig'])}"]
    op = row["op"]
    kind = row["kind"]
    if kind == "exception":
        lines.append(f"modbus_exception, {hdr}, {row['exception_code']}")
        return lines
    side = "request" if kind == "request" else "response"
    name = f"modbus_{op}_{side}"
    if op in ("read_coils", "read_discrete_inputs", "read_holding_registers", "read_input_registers"):
        if side == "request":
            lines.append(f"{name}, {hdr}, {row['address']}, {row['quantity']}")
        elif op in ("read_coils", "read_discrete_inputs"):
            values = row.get("response_values") or []
            lines.append(f"{name}, {hdr}, {_bits(values, 8 * row.get('byte_count', 0))}")
        else:
            values = row.get("response_values") or []
            lines.append(f"{name}, {hdr}, [{', '.join(str(v) for v in values)}]")
    elif op == "write_single_coil":
        value = (row.get("request_values") if side == "request" else row.get("response_values")) or [0]
        lines.append(f"{name}, {hdr}, {row['address']}, {_bool(value[0])}")
    elif op == "write_multiple_coils":
        if side == "request":
            values = row.get("request_values") or []  # Zeek cuts FC15 request coils at the quantity
            lines.append(f"{name}, {hdr}, {row['address']}, {_bits(values, 0)}")
        else:
            lines.append(f"{name}, {hdr}, {row['address']}, {row['quantity']}")
    return lines


def read_baseline(path: Path) -> Counter[str]:
    """A `sort | uniq -c` baseline as a Counter of lines (the btest header line dropped)."""
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        if not line or line.startswith("###"):
            continue
        n, _, text = line.partition(" ")
        if n.isdigit():
            counts[text] += int(n)
        else:  # a script whose output was not through `uniq -c`
            counts[line] += 1
    return counts
