"""BACnet enumeration names and the ASHRAE vendor list, for the decoders and the logs.

Names are the standard's identifiers spelled as ICSNPP's logs and bacpypes3 spell them: lower case with hyphens
(`analog-input`, `present-value`, `segmented-both`). The tables follow bacpypes3 0.0.110's enumerations
(tests/protocols/test_bacnet_values.py checks every entry against them), with a few additions and spellings
from ICSNPP where bacpypes3 has none or splits a word oddly: numbers that later editions of the standard removed
(e.g. property 95 `protocol-conformance-class`, error code 1 `authentication-failed`), units ICSNPP knows and
bacpypes3 lacks (252, 254, 47808-47815), and `property-is-not-a-list`, `invalid-parameter-data-type`,
`decibels-a`, `not-a-bacnet-sc-hub`, `http-not-a-server`.

A number without a name renders as `unknown-N` (Zeek's habit); a proprietary object type (128-1023) or property
(512 and up) renders as its number in text, e.g. `514`. `VENDORS` (vendor id -> name) is read once, on first
use, from protocols/data/bacnet_vendors.tsv (transcribed from ICSNPP, BSD-3-Clause; licence beside it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_VENDOR_FILE = Path(__file__).with_name("data") / "bacnet_vendors.tsv"


def _seq(names: str) -> dict[int, str]:
    """A name table from whitespace-separated names numbered from 0; `-` marks an unassigned number."""
    return {i: n for i, n in enumerate(names.split()) if n != "-"}


OBJECT_TYPES: dict[int, str] = _seq("""
analog-input analog-output analog-value binary-input binary-output binary-value calendar command device
event-enrollment file group loop multi-state-input multi-state-output notification-class program schedule
averaging multi-state-value trend-log life-safety-point life-safety-zone accumulator pulse-converter event-log
global-group trend-log-multiple load-control structured-view access-door timer access-credential access-point
access-rights access-user access-zone credential-data-input network-security bitstring-value characterstring-value
date-pattern-value date-value datetime-pattern-value datetime-value integer-value large-analog-value
octetstring-value positive-integer-value time-pattern-value time-value notification-forwarder alert-enrollment
channel lighting-output binary-lighting-output network-port elevator-group escalator lift staging audit-log
audit-reporter
""")
PROPERTY_IDS: dict[int, str] = _seq("""
acked-transitions ack-required action action-text active-text active-vt-sessions alarm-value alarm-values all
all-writes-successful apdu-segment-timeout apdu-timeout application-software-version archive bias
change-of-state-count change-of-state-time notification-class - controlled-variable-reference
controlled-variable-units controlled-variable-value cov-increment date-list daylight-savings-status deadband
derivative-constant derivative-constant-units description description-of-halt device-address-binding device-type
effective-period elapsed-active-time error-limit event-enable event-state event-type exception-schedule
fault-values feedback-value file-access-method file-size file-type firmware-revision high-limit inactive-text
in-process instance-of integral-constant integral-constant-units issue-confirmed-notifications limit-enable
list-of-group-members list-of-object-property-references list-of-session-keys local-date local-time location
low-limit manipulated-variable-reference maximum-output max-apdu-length-accepted max-info-frames max-master
max-pres-value minimum-off-time minimum-on-time minimum-output min-pres-value model-name modification-date
notify-type number-of-apdu-retries number-of-states object-identifier object-list object-name
object-property-reference object-type optional out-of-service output-units event-parameters polarity present-value
priority priority-array priority-for-writing process-identifier program-change program-location program-state
proportional-constant proportional-constant-units protocol-conformance-class protocol-object-types-supported
protocol-services-supported protocol-version read-only reason-for-halt recipient recipient-list reliability
relinquish-default required resolution segmentation-supported setpoint setpoint-reference state-text status-flags
system-status time-delay time-of-active-time-reset time-of-state-count-reset time-synchronization-recipients units
update-interval utc-offset vendor-identifier vendor-name vt-classes-supported weekly-schedule attempted-samples
average-value buffer-size client-cov-increment cov-resubscription-interval current-notify-time event-time-stamps
log-buffer log-device-object-property enable log-interval maximum-value minimum-value notification-threshold
previous-notify-time protocol-revision records-since-notification record-count start-time stop-time stop-when-full
total-record-count valid-samples window-interval window-samples maximum-value-timestamp minimum-value-timestamp
variance-value active-cov-subscriptions backup-failure-timeout configuration-files database-revision
direct-reading last-restore-time maintenance-required member-of mode operation-expected setting silenced
tracking-value zone-members life-safety-alarm-values max-segments-accepted profile-name auto-slave-discovery
manual-slave-address-binding slave-address-binding slave-proxy-enable last-notify-record schedule-default
accepted-modes adjust-value count count-before-change count-change-time cov-period input-reference
limit-monitoring-interval logging-object logging-record prescale pulse-rate scale scale-factor update-time
value-before-change value-set value-change-time align-intervals group-member-names interval-offset
last-restart-reason logging-type member-status-flags notification-period previous-notify-record
requested-update-interval restart-notification-recipients time-of-device-restart time-synchronization-interval
trigger utc-time-synchronization-recipients node-subtype node-type structured-object-list subordinate-annotations
subordinate-list actual-shed-level duty-window expected-shed-level full-duty-baseline - - requested-shed-level
shed-duration shed-level-descriptions shed-levels state-description - - - door-alarm-state
door-extended-pulse-time door-members door-open-too-long-time door-pulse-time door-status door-unlock-delay-time
lock-status masked-alarm-values secured-status - - - - - - - - absentee-limit access-alarm-events access-doors
access-event access-event-authentication-factor access-event-credential access-event-time
access-transaction-events accompaniment accompaniment-time activation-time active-authentication-policy
assigned-access-rights authentication-factors authentication-policy-list authentication-policy-names
authentication-status authorization-mode belongs-to credential-disable credential-status credentials
credentials-in-zone days-remaining entry-points exit-points expiration-time extended-time-enable
failed-attempt-events failed-attempts failed-attempts-time last-access-event last-access-point
last-credential-added last-credential-added-time last-credential-removed last-credential-removed-time
last-use-time lockout lockout-relinquish-time master-exemption max-failed-attempts members muster-point
negative-access-rules number-of-authentication-policies occupancy-count occupancy-count-adjust
occupancy-count-enable occupancy-exemption occupancy-lower-limit occupancy-lower-limit-enforced occupancy-state
occupancy-upper-limit occupancy-upper-limit-enforced passback-exemption passback-mode passback-timeout
positive-access-rules reason-for-disable supported-formats supported-format-classes threat-authority threat-level
trace-flag transaction-notification-class user-external-identifier user-information-reference - - - - - user-name
user-type uses-remaining zone-from zone-to access-event-tag global-identifier - - verification-time
base-device-security-policy distribution-key-revision do-not-hide key-sets last-key-server
network-access-security-policies packet-reorder-time security-pdu-timeout security-time-window
supported-security-algorithms update-key-set-timeout backup-and-restore-state backup-preparation-time
restore-completion-time restore-preparation-time bit-mask bit-text is-utc group-members group-member-names
member-status-flags requested-update-interval covu-period covu-recipients event-message-texts
event-message-texts-config event-detection-enable event-algorithm-inhibit event-algorithm-inhibit-ref
time-delay-normal reliability-evaluation-inhibit fault-parameters fault-type local-forwarding-only
process-identifier-filter subscribed-recipients port-filter authorization-exemptions allow-group-delay-inhibit
channel-number control-groups execution-delay last-priority write-status property-list serial-number
blink-warn-enable default-fade-time default-ramp-rate default-step-increment egress-time in-progress
instantaneous-power lighting-command lighting-command-default-priority max-actual-value min-actual-value power
transition egress-active interface-value fault-high-limit fault-low-limit low-diff-limit strike-count
time-of-strike-count-reset default-timeout initial-timeout last-state-change state-change-values timer-running
timer-state apdu-length ip-address ip-default-gateway ip-dhcp-enable ip-dhcp-lease-time
ip-dhcp-lease-time-remaining ip-dhcp-server ip-dns-server bacnet-ip-global-address bacnet-ip-mode
bacnet-ip-multicast-address bacnet-ip-nat-traversal ip-subnet-mask bacnet-ip-udp-port bbmd-accept-fd-registrations
bbmd-broadcast-distribution-table bbmd-foreign-device-table changes-pending command fd-bbmd-address
fd-subscription-lifetime link-speed link-speeds link-speed-autonegotiate mac-address network-interface-name
network-number network-number-quality network-type routing-table virtual-mac-address-table command-time-array
current-command-priority last-command-time value-source value-source-array bacnet-ipv6-mode ipv6-address
ipv6-prefix-length bacnet-ipv6-udp-port ipv6-default-gateway bacnet-ipv6-multicast-address ipv6-dns-server
ipv6-auto-addressing-enable ipv6-dhcp-lease-time ipv6-dhcp-lease-time-remaining ipv6-dhcp-server ipv6-zone-index
assigned-landing-calls car-assigned-direction car-door-command car-door-status car-door-text car-door-zone
car-drive-status car-load car-load-units car-mode car-moving-direction car-position elevator-group energy-meter
energy-meter-ref escalator-mode fault-signals floor-text group-id - group-mode higher-deck installation-id
landing-calls landing-call-control landing-door-status lower-deck machine-room-id making-car-call
next-stopping-floor operation-direction passenger-alarm power-mode registered-car-call
active-cov-multiple-subscriptions protocol-level reference-port deployed-profile-location profile-location tags
subordinate-node-types subordinate-tags subordinate-relationships default-subordinate-relationship represents
default-present-value present-stage stages stage-names target-references audit-source-reporter audit-level
audit-notification-recipient audit-priority-filter auditable-operations delete-on-forward maximum-send-delay
monitored-objects send-now floor-number device-uuid
""")
ERROR_CLASSES: dict[int, str] = _seq("""
device object property resources security services vt communication
""")
ERROR_CODES: dict[int, str] = _seq("""
other authentication-failed configuration-in-progress device-busy dynamic-creation-not-supported
file-access-denied incompatible-security-levels inconsistent-parameters inconsistent-selection-criterion
invalid-data-type invalid-file-access-method invalid-file-start-position invalid-operator-name
invalid-parameter-data-type invalid-time-stamp key-generation-error missing-required-parameter
no-objects-of-specified-type no-space-for-object no-space-to-add-list-element no-space-to-write-property
no-vt-sessions-available property-is-not-a-list object-deletion-not-permitted object-identifier-already-exists
operational-problem password-failure read-access-denied security-not-supported service-request-denied timeout
unknown-object unknown-property - unknown-vt-class unknown-vt-session unsupported-object-type value-out-of-range
vt-session-already-closed vt-session-termination-failure write-access-denied character-set-not-supported
invalid-array-index cov-subscription-failed not-cov-property optional-functionality-not-supported
invalid-configuration-data datatype-not-supported duplicate-name duplicate-object-id property-is-not-an-array
abort-buffer-overflow abort-invalid-apdu-in-this-state abort-preempted-by-higher-priority-task
abort-segmentation-not-supported abort-proprietary abort-other invalid-tag network-down reject-buffer-overflow
reject-inconsistent-parameters reject-invalid-parameter-data-type reject-invalid-tag
reject-missing-required-parameter reject-parameter-out-of-range reject-too-many-arguments
reject-undefined-enumeration reject-unrecognized-service reject-proprietary reject-other unknown-device
unknown-route value-not-initialized invalid-event-state no-alarm-configured log-buffer-full logged-value-purged
no-property-specified not-configured-for-triggered-logging unknown-subscription parameter-out-of-range
list-element-not-found busy communication-disabled success access-denied bad-destination-address
bad-destination-device-id bad-signature bad-source-address bad-timestamp cannot-use-key cannot-verify-message-id
correct-key-revision destination-device-id-required duplicate-message encryption-not-configured
encryption-required incorrect-key invalid-key-data key-update-in-progress malformed-message not-key-server
security-not-configured source-security-required too-many-keys unknown-authentication-type unknown-key
unknown-key-revision unknown-source-message not-router-to-dnet router-busy unknown-network-message
message-too-long security-error addressing-error write-bdt-failed read-bdt-failed register-foreign-device-failed
read-fdt-failed delete-fdt-entry-failed distribute-broadcast-failed unknown-file-size abort-apdu-too-long
abort-application-exceeded-reply-time abort-out-of-resources abort-tsm-timeout abort-window-size-out-of-range
file-full inconsistent-configuration inconsistent-object-type internal-error not-configured out-of-memory
value-too-long abort-insufficient-security abort-security-error duplicate-entry invalid-value-in-this-state -
list-item-not-numbered list-item-not-timestamped invalid-data-encoding bvlc-function-unknown
bvlc-proprietary-function-unknown header-encoding-error header-not-understood message-incomplete
not-a-bacnet-sc-hub payload-expected unexpected-data node-duplicate-vmac http-unexpected-response-code
http-no-upgrade http-resource-not-local http-proxy-authentication-failed http-response-timeout
http-response-syntax-error http-response-value-error http-response-missing-header http-websocket-header-error
http-upgrade-required http-upgrade-error http-temporary-unavailable http-not-a-server http-error
websocket-scheme-not-supported websocket-unknown-control-message websocket-close-error websocket-closed-by-peer
websocket-endpoint-leaves websocket-protocol-error websocket-data-not-accepted websocket-closed-abnormally
websocket-data-inconsistent websocket-data-against-policy websocket-frame-too-long websocket-extension-missing
websocket-request-unavailable websocket-error tls-client-certificate-error tls-server-certificate-error
tls-client-authentication-failed tls-server-authentication-failed tls-client-certificate-expired
tls-server-certificate-expired tls-client-certificate-revoked tls-server-certificate-revoked tle-error
dns-unavailable dns-name-resolution-failed dns-resolver-failure dns-error tcp-connect-timeout
tcp-connection-refused tcp-closed-by-local tcp-closed-other tcp-error ip-address-not-reachable ip-error
""")
REJECT_REASONS: dict[int, str] = _seq("""
other buffer-overflow inconsistent-parameters invalid-parameter-data-type invalid-tag missing-required-parameter
parameter-out-of-range too-many-arguments undefined-enumeration unrecognized-service
""")
ABORT_REASONS: dict[int, str] = _seq("""
other buffer-overflow invalid-apdu-in-this-state preempted-by-higher-priority-task segmentation-not-supported
security-error insufficient-security window-size-out-of-range application-exceeded-reply-time out-of-resources
tsm-timeout apdu-too-long
""")
SEGMENTATION: dict[int, str] = _seq("""
segmented-both segmented-transmit segmented-receive no-segmentation
""")
DEVICE_STATES: dict[int, str] = _seq("""
enable disable disable-initiation
""")
REINIT_STATES: dict[int, str] = _seq("""
coldstart warmstart start-backup end-backup start-restore end-restore abort-restore activate-changes
""")
EVENT_STATES: dict[int, str] = _seq("""
normal fault offnormal high-limit low-limit life-safety-alarm
""")
DEVICE_STATUS: dict[int, str] = _seq("""
operational operational-read-only download-required download-in-progress non-operational backup-in-progress
""")
RELIABILITY: dict[int, str] = _seq("""
no-fault-detected no-sensor over-range under-range open-loop shorted-loop no-output unreliable-other process-error
multi-state-fault configuration-error - communication-failure member-fault monitored-object-fault tripped
lamp-failure activation-failure renew-dhcp-failure renew-fd-registration-failure restart-auto-negotiation-failure
restart-failure proprietary-command-failure faults-listed referenced-object-fault multi-state-out-of-range
""")
NOTIFY_TYPES: dict[int, str] = _seq("""
alarm event ack-notification
""")
LOGGING_TYPES: dict[int, str] = _seq("""
polled cov triggered
""")
UNITS: dict[int, str] = _seq("""
square-meters square-feet milliamperes amperes ohms volts kilovolts megavolts volt-amperes kilovolt-amperes
megavolt-amperes volt-amperes-reactive kilovolt-amperes-reactive megavolt-amperes-reactive degrees-phase
power-factor joules kilojoules watt-hours kilowatt-hours btus therms ton-hours joules-per-kilogram-dry-air
btus-per-pound-dry-air cycles-per-hour cycles-per-minute hertz grams-of-water-per-kilogram-dry-air
percent-relative-humidity millimeters meters inches feet watts-per-square-foot watts-per-square-meter lumens luxes
foot-candles kilograms pounds-mass tons kilograms-per-second kilograms-per-minute kilograms-per-hour
pounds-mass-per-minute pounds-mass-per-hour watts kilowatts megawatts btus-per-hour horsepower tons-refrigeration
pascals kilopascals bars pounds-force-per-square-inch centimeters-of-water inches-of-water millimeters-of-mercury
centimeters-of-mercury inches-of-mercury degrees-celsius degrees-kelvin degrees-fahrenheit degree-days-celsius
degree-days-fahrenheit years months weeks days hours minutes seconds meters-per-second kilometers-per-hour
feet-per-second feet-per-minute miles-per-hour cubic-feet cubic-meters imperial-gallons liters us-gallons
cubic-feet-per-minute cubic-meters-per-second imperial-gallons-per-minute liters-per-second liters-per-minute
us-gallons-per-minute degrees-angular degrees-celsius-per-hour degrees-celsius-per-minute
degrees-fahrenheit-per-hour degrees-fahrenheit-per-minute no-units parts-per-million parts-per-billion percent
percent-per-second per-minute per-second psi-per-degree-fahrenheit radians revolutions-per-minute currency1
currency2 currency3 currency4 currency5 currency6 currency7 currency8 currency9 currency10 square-inches
square-centimeters btus-per-pound centimeters pounds-mass-per-second delta-degrees-fahrenheit delta-degrees-kelvin
kilohms megohms millivolts kilojoules-per-kilogram megajoules joules-per-degree-kelvin
joules-per-kilogram-degree-kelvin kilohertz megahertz per-hour milliwatts hectopascals millibars
cubic-meters-per-hour liters-per-hour kilowatt-hours-per-square-meter kilowatt-hours-per-square-foot
megajoules-per-square-meter megajoules-per-square-foot watts-per-square-meter-degree-kelvin cubic-feet-per-second
percent-obscuration-per-foot percent-obscuration-per-meter milliohms megawatt-hours kilo-btus mega-btus
kilojoules-per-kilogram-dry-air megajoules-per-kilogram-dry-air kilojoules-per-degree-kelvin
megajoules-per-degree-kelvin newton grams-per-second grams-per-minute tons-per-hour kilo-btus-per-hour
hundredths-seconds milliseconds newton-meters millimeters-per-second millimeters-per-minute meters-per-minute
meters-per-hour cubic-meters-per-minute meters-per-second-per-second amperes-per-meter amperes-per-square-meter
ampere-square-meters farads henrys ohm-meters siemens siemens-per-meter teslas volts-per-degree-kelvin
volts-per-meter webers candelas candelas-per-square-meter degrees-kelvin-per-hour degrees-kelvin-per-minute
joule-seconds radians-per-second square-meters-per-newton kilograms-per-cubic-meter newton-seconds
newtons-per-meter watts-per-meter-per-degree-kelvin micro-siemens cubic-feet-per-hour us-gallons-per-hour
kilometers micrometers grams milligrams milliliters milliliters-per-second decibels decibels-millivolt
decibels-volt millisiemens watt-hours-reactive kilowatt-hours-reactive megawatt-hours-reactive
millimeters-of-water per-mille grams-per-gram kilograms-per-kilogram grams-per-kilogram milligrams-per-gram
milligrams-per-kilogram grams-per-milliliter grams-per-liter milligrams-per-liter micrograms-per-liter
grams-per-cubic-meter milligrams-per-cubic-meter micrograms-per-cubic-meter nanograms-per-cubic-meter
grams-per-cubic-centimeter becquerels kilobecquerels megabecquerels gray milligray microgray sieverts
millisieverts microsieverts microsieverts-per-hour decibels-a nephelometric-turbidity-unit pH
grams-per-square-meter minutes-per-degree-kelvin ohm-meter-per-square-meter ampere-seconds volt-ampere-hours
kilovolt-ampere-hours megavolt-ampere-hours volt-ampere-hours-reactive kilovolt-ampere-hours-reactive
megavolt-ampere-hours-reactive volts-square-hours ampere-square-hours joules-per-hours cubic-feet-per-day
cubic-meters-per-day watt-hours-per-cubic-meter joules-per-cubic-meter mole-percent pascal-seconds
million-standard-cubic-feet-per-minute
""")

UNITS.update({
    47808: "standard-cubic-feet-per-day", 47809: "million-standard-cubic-feet-per-day",
    47810: "thousand-cubic-feet-per-day", 47811: "thousand-standard-cubic-feet-per-day",
    47812: "pounds-mass-per-day", 47814: "millirems", 47815: "millirems-per-hour",
})

BINARY_PV: dict[int, str] = {0: "inactive", 1: "active"}

# Properties whose enumerated/unsigned value ICSNPP's bacnet_property.log renders by name (main.zeek)
VALUE_NAMES: dict[int, dict[int, str]] = {
    36: EVENT_STATES, 72: NOTIFY_TYPES, 79: OBJECT_TYPES, 103: RELIABILITY,
    107: SEGMENTATION, 112: DEVICE_STATUS, 117: UNITS, 197: LOGGING_TYPES,
}


def name(table: dict[int, str], n: int) -> str:
    """The name of `n` in `table`, else `unknown-N`."""
    v = table.get(n)
    return v if v is not None else f"unknown-{n}"


def object_type_name(n: int) -> str:
    """An object type's name; proprietary types (128-1023) as their number in text, others `unknown-N`."""
    v = OBJECT_TYPES.get(n)
    if v is not None:
        return v
    return str(n) if n >= 128 else f"unknown-{n}"


def property_name(n: int) -> str:
    """A property identifier's name; proprietary ones (512 and up) as their number in text, others `unknown-N`."""
    v = PROPERTY_IDS.get(n)
    if v is not None:
        return v
    return str(n) if n >= 512 else f"unknown-{n}"


_vendors: dict[int, str] | None = None


def vendors() -> dict[int, str]:
    """The ASHRAE vendor-id table (id -> name), read from the data file on first use and kept."""
    global _vendors
    if _vendors is None:
        table: dict[int, str] = {}
        try:
            text = _VENDOR_FILE.read_text(encoding="utf-8")
        except OSError:
            text = ""
        for line in text.splitlines():
            vid, sep, vname = line.partition("\t")
            if sep and vid.isdigit():
                table[int(vid)] = vname
        _vendors = table
    return _vendors


def vendor_name(vid: int) -> str:
    """The name of a BACnet vendor id, else `unknown-N`."""
    v = (_vendors if _vendors is not None else vendors()).get(vid)
    return v if v is not None else f"unknown-{vid}"


def __getattr__(attr: str) -> Any:
    """Module attribute `VENDORS`: the vendor table, loaded lazily."""
    if attr == "VENDORS":
        return vendors()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
