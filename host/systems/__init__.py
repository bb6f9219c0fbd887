"""The seed systems and what they share: scenarios, their recorders, reports and faults.

- `scenario`: parties, numbered steps, the recorders (APDU, HTTP, local link).
- `faults`: fault specs, the injector, the walker over a scenario's fault points.
- `report`: the narrative, `--json` and the self-contained HTML report.
- `run`: the scenario registry and `run_scenario`.
- `esim_download`: the eSIM profile download (GSMA SGP.22), the first scenario.
- `ekyc`: seed 000, eKYC once and eSIM profiles from every carrier after.
"""
