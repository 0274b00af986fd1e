"""Alert forwarding: alerts and incidents sent as they happen to JSON-lines files, syslog, MQTT and webhooks.

One module per sink type (jsonl_file, syslog, mqtt, webhook), their settings (settings: the `sinks:` config
section), the bodies (formats: otwatch JSON, ECS, CEF), the Prometheus families (metrics) and the fan-out
(fanout: `SinkSet`, `build_sinks`) the pipeline publishes to. Nothing is imported here, so that the config can
import the settings without loading the sinks. See docs/sinks.md.
"""
