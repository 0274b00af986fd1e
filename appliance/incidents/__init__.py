"""Incidents (the judge layer's last step): alerts correlated per actor into incidents with kill-chain phases, a
timeline, assets, ATT&CK techniques, an explainable risk score, a narrative and a recommended response.

Modules: `phases` (the phase table), `correlate` (which incident an alert joins), `model` (the incident kept),
`risk`, `narrative`, `response` (nftables text, never applied), `rows` (the record), `persist` (SQLite, actions,
incidents.jsonl, rules files), `store` (IncidentStore, the owner), `settings` (the `incidents:` config section),
`command` (`otwatch incidents`). This package module imports nothing, so that the config can import the settings
without the rest.
"""
