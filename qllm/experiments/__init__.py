"""Experiments: benchmark presets (bench), the sweep runner and its jobs, the noise study,
aggregation into tables, plots, and the classical baselines every hybrid is compared with."""
