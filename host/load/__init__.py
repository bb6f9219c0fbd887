"""Load on an ES9+ server: N emulated eUICCs, each a Locust user with cardemu's LPA.

- `orders`: the numbered matching IDs a run uses, and the SM-DP+ orders behind them.
- `device`: one emulated eUICC (its own EID) and the LPA driving it, every ES9+ call timed.
- `summary`: the figures of a run (downloads/s, percentiles per ES9+ function,
  failures by SGP.22 status code), from Locust's statistics.
- `locust_run`: the Locust user class and the local / master / worker runs. It
  imports Locust, whose import monkey-patches the standard library for gevent:
  only `cardemu load` imports it, never `import host` or `cardemu` itself.
"""
