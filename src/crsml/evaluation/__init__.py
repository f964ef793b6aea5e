"""Out-of-fold evaluation: metrics with bootstrap intervals, baselines, curves and plots."""
