"""Datasets for the doctor tests: clean ones (no probe may fail) and one planted defect per probe."""
