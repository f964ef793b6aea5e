"""Tocilizumab benefit: the emulated decision at the landmark, treatment-effect learners,
observational diagnostics and the exported benefit model."""
