"""Cross-lingual adversarial robustness: words per script, attack results and their metrics (issue 12)."""
